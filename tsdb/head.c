/* SPDX-License-Identifier: Apache-2.0
 *
 * head.c - the in-memory head.
 *
 * Series.  Each series has its label set (strings interned in a reference-
 * counted symbol table, shared by every series that uses them), a list of
 * sealed chunks (encoded bytes, sorted by time, not overlapping) and one
 * open chunk encoder taking in-order samples.  A chunk is sealed when it
 * reaches chunk_max_samples or when the next sample crosses a multiple of
 * chunk_range_ms, so every chunk lies inside one block range and a cut can
 * hand whole chunks to blocks.
 *
 * Out-of-order samples (at or before the series' newest time) are merged
 * into the chunk whose time span holds them (or the neighbour in the same
 * range window, or a new one-sample chunk): the chunk is decoded, the
 * sample inserted or replaced, and the chunk encoded again.  Chunks are
 * small, so this costs microseconds, and it happens only for late samples.
 * Equal bits at an existing time is a no-op (HEAD_DUPLICATE), different
 * bits replace (HEAD_REPLACED).
 *
 * Export marks chunks as exported; they stay readable until head_truncate
 * frees them.  A late sample for an exported chunk's span goes into a new
 * chunk instead (exported bytes never change), so nothing appended during a
 * cut is lost.
 *
 * Index.  A chained hash table from label sets to series, an array from
 * ref to series, and postings: for each name=value pair the sorted refs of
 * the series that have it, and for each name its values.  Postings grow on
 * series creation and are rebuilt by head_truncate after it drops series.
 *
 * Locks.  idx (a rwlock) guards the table, the postings and the symbols;
 * each series has a mutex for its chunks.  Lock order: idx, then series.
 */
#include "head.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/endian.h"
#include "base/sm_alloc.h"
#include "base/sm_hash.h"
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

/* ---- series ---- */

typedef struct hchunk {
    sm_ms_t mint, maxt;
    uint8_t *data; /* owned */
    uint32_t len;
    uint32_t count;
    bool exported;
} hchunk;

typedef struct hseries {
    uint64_t ref;
    uint64_t hash;
    sm_labels ls;        /* strings are interned symbols */
    struct hseries *next; /* hash chain */
    pthread_mutex_t mu;
    hchunk *ch;          /* sealed chunks, sorted by mint */
    uint32_t nch, capch;
    chunk_enc *open;     /* NULL when no open chunk */
    bool logged;
} hseries;

typedef struct posting {
    uint64_t *refs;
    size_t n, cap;
} posting;

typedef struct name_values {
    const char **v; /* interned values */
    size_t n, cap;
} name_values;

struct head {
    head_opts o;
    pthread_rwlock_t idx;
    hseries **tab; /* hash table by labels */
    size_t ntab, nseries;
    hseries **byref;
    size_t nbyref;
    uint64_t next_ref;
    strmap syms;     /* string -> refcount (uintptr_t) */
    strmap postings; /* "name\xffvalue" -> posting */
    strmap names;    /* name -> name_values */
    _Atomic sm_ms_t maxt; /* newest sample time of the whole head */
    pthread_mutex_t export_mu;
};

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
    char key[8192];
    for (uint32_t i = 0; i < s->ls.n; i++) {
        const char *name = s->ls.v[i].name, *value = s->ls.v[i].value;
        size_t nl = strlen(name), vl = strlen(value);
        if (nl + vl + 1 > sizeof key) continue; /* not indexed: found by scanning */
        memcpy(key, name, nl);
        key[nl] = '\xff';
        memcpy(key + nl + 1, value, vl);
        bool created;
        sm_entry *e = strmap_put(&h->postings, key, nl + 1 + vl, &created);
        if (!e) return SM_ENOMEM;
        if (created && !(e->val = sm_calloc(1, sizeof(posting)))) return SM_ENOMEM;
        if (posting_add(e->val, s->ref)) return SM_ENOMEM;
        if (created) {
            sm_entry *ne = strmap_put(&h->names, name, nl, &created);
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
    for (uint32_t i = 0; i < s->nch; i++) sm_free(s->ch[i].data);
    sm_free(s->ch);
    chunk_enc_free(s->open);
    for (uint32_t i = 0; i < s->ls.n; i++) {
        sym_put(h, s->ls.v[i].name);
        sym_put(h, s->ls.v[i].value);
    }
    sm_free(s->ls.v);
    pthread_mutex_destroy(&s->mu);
    sm_free(s);
}

int head_new(const head_opts *o, head **out) {
    head *h = sm_calloc(1, sizeof *h);
    if (!h) return SM_ENOMEM;
    h->o = *o;
    if (h->o.ooo_window_ms < 0) h->o.ooo_window_ms = 0;
    if (h->o.chunk_max_samples == 0 || h->o.chunk_max_samples > CHUNK_MAX_SAMPLES)
        h->o.chunk_max_samples = 120;
    if (h->o.chunk_range_ms <= 0) h->o.chunk_range_ms = 2 * 3600 * 1000;
    pthread_rwlock_init(&h->idx, NULL);
    pthread_mutex_init(&h->export_mu, NULL);
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
    sm_free(h);
}

static hseries *find_locked(const head *h, const sm_labels *ls, uint64_t hash) {
    if (!h->ntab) return NULL;
    for (hseries *s = h->tab[hash & (h->ntab - 1)]; s; s = s->next)
        if (s->hash == hash && sm_labels_equal(&s->ls, ls)) return s;
    return NULL;
}

static hseries *by_ref(const head *h, uint64_t ref) {
    return ref < h->nbyref ? h->byref[ref] : NULL;
}

static int tab_grow(head *h) {
    size_t nt = h->ntab ? h->ntab * 2 : 1024;
    hseries **t = sm_calloc(nt, sizeof *t);
    if (!t) return SM_ENOMEM;
    for (size_t i = 0; i < h->ntab; i++) {
        hseries *s = h->tab[i];
        while (s) {
            hseries *nx = s->next;
            s->next = t[s->hash & (nt - 1)];
            t[s->hash & (nt - 1)] = s;
            s = nx;
        }
    }
    sm_free(h->tab);
    h->tab = t;
    h->ntab = nt;
    return 0;
}

/* Create with the write lock held. */
static int create_locked(head *h, uint64_t ref, const sm_labels *ls, uint64_t hash, hseries **out) {
    if (h->nseries >= h->ntab && tab_grow(h)) return SM_ENOMEM;
    if (ref >= h->nbyref) {
        size_t nn = h->nbyref ? h->nbyref : 1024;
        while (nn <= ref) nn *= 2;
        hseries **nb = sm_realloc(h->byref, nn * sizeof *nb);
        if (!nb) return SM_ENOMEM;
        memset(nb + h->nbyref, 0, (nn - h->nbyref) * sizeof *nb);
        h->byref = nb;
        h->nbyref = nn;
    }
    hseries *s = sm_calloc(1, sizeof *s);
    sm_label *lv = sm_calloc(ls->n ? ls->n : 1, sizeof *lv);
    if (!s || !lv) {
        sm_free(s);
        sm_free(lv);
        return SM_ENOMEM;
    }
    for (uint32_t i = 0; i < ls->n; i++) {
        lv[i].name = sym_get(h, ls->v[i].name);
        lv[i].value = sym_get(h, ls->v[i].value);
        if (!lv[i].name || !lv[i].value) {
            /* Give back what was taken. */
            for (uint32_t k = 0; k <= i; k++) {
                if (lv[k].name) sym_put(h, lv[k].name);
                if (lv[k].value) sym_put(h, lv[k].value);
            }
            sm_free(lv);
            sm_free(s);
            return SM_ENOMEM;
        }
    }
    s->ref = ref;
    s->hash = hash;
    s->ls = (sm_labels){lv, ls->n};
    pthread_mutex_init(&s->mu, NULL);
    s->next = h->tab[hash & (h->ntab - 1)];
    h->tab[hash & (h->ntab - 1)] = s;
    h->byref[ref] = s;
    h->nseries++;
    if (ref >= h->next_ref) h->next_ref = ref + 1;
    if (index_series(h, s)) return SM_ENOMEM; /* the series exists; its postings may be partial */
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

int head_create_with_ref(head *h, uint64_t ref, const sm_labels *ls, sm_error *err) {
    if (ref == 0) return SM_ERR(err, SM_EINVAL, "series ref 0");
    uint64_t hash = sm_labels_hash(ls);
    pthread_rwlock_wrlock(&h->idx);
    int rc = 0;
    hseries *s = by_ref(h, ref);
    if (s) {
        if (!sm_labels_equal(&s->ls, ls)) rc = SM_ERR(err, SM_EINVAL, "series ref %llu reused", (unsigned long long)ref);
    } else if (find_locked(h, ls, hash)) {
        rc = SM_ERR(err, SM_EINVAL, "series logged twice with refs %llu and %llu",
                    (unsigned long long)find_locked(h, ls, hash)->ref, (unsigned long long)ref);
    } else {
        rc = create_locked(h, ref, ls, hash, &s);
        if (rc) rc = SM_ERR(err, rc, "out of memory creating a series");
    }
    pthread_rwlock_unlock(&h->idx);
    return rc;
}

bool head_series_logged(head *h, uint64_t ref) {
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = by_ref(h, ref);
    bool v = false;
    if (s) {
        pthread_mutex_lock(&s->mu);
        v = s->logged;
        pthread_mutex_unlock(&s->mu);
    }
    pthread_rwlock_unlock(&h->idx);
    return v;
}

void head_series_set_logged(head *h, uint64_t ref) {
    pthread_rwlock_rdlock(&h->idx);
    hseries *s = by_ref(h, ref);
    if (s) {
        pthread_mutex_lock(&s->mu);
        s->logged = true;
        pthread_mutex_unlock(&s->mu);
    }
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
    if (mx == SM_MS_MIN) return 0;
    if (t < mx && mx - t > h->o.ooo_window_ms) return SM_ERANGE;
    return 0;
}

/* ---- appending ---- */

static sm_ms_t window_of(const head *h, sm_ms_t t) {
    int64_t r = h->o.chunk_range_ms, q = t / r;
    if (t % r != 0 && t < 0) q--;
    return q * r;
}

static int chunks_reserve(hseries *s, uint32_t extra) {
    if (s->nch + extra <= s->capch) return 0;
    uint32_t nc = s->capch ? s->capch * 2 : 4;
    while (nc < s->nch + extra) nc *= 2;
    hchunk *n = sm_realloc(s->ch, nc * sizeof *n);
    if (!n) return SM_ENOMEM;
    s->ch = n;
    s->capch = nc;
    return 0;
}

/* Seal the open chunk into the sealed list. */
static int seal(hseries *s) {
    if (!s->open || chunk_enc_count(s->open) == 0) return 0;
    if (chunks_reserve(s, 1)) return SM_ENOMEM;
    sm_buf b = SM_BUF_INIT;
    if (chunk_enc_finish(s->open, &b)) return SM_ENOMEM;
    size_t len;
    uint8_t *data = sm_buf_detach(&b, &len);
    s->ch[s->nch++] = (hchunk){chunk_enc_mint(s->open), chunk_enc_maxt(s->open), data, (uint32_t)len,
                               chunk_enc_count(s->open), false};
    chunk_enc_reset(s->open);
    return 0;
}

static sm_ms_t series_maxt(const hseries *s) {
    if (s->open && chunk_enc_count(s->open)) return chunk_enc_maxt(s->open);
    return s->nch ? s->ch[s->nch - 1].maxt : SM_MS_MIN;
}

/* Decode a sealed chunk into fresh arrays (n samples). */
static int decode_chunk(const hchunk *c, sm_ms_t **ts, double **vs, size_t extra) {
    *ts = sm_malloc((c->count + extra) * sizeof **ts);
    *vs = sm_malloc((c->count + extra) * sizeof **vs);
    size_t n;
    if (!*ts || !*vs || chunk_decode(c->data, c->len, *ts, *vs, c->count, &n)) {
        sm_free(*ts);
        sm_free(*vs);
        return SM_ENOMEM;
    }
    return 0;
}

static int encode_into(hchunk *c, const sm_ms_t *ts, const double *vs, size_t n) {
    sm_buf b = SM_BUF_INIT;
    if (chunk_encode(ts, vs, n, &b)) {
        sm_buf_fini(&b);
        return SM_ENOMEM;
    }
    size_t len;
    uint8_t *data = sm_buf_detach(&b, &len);
    sm_free(c->data);
    c->data = data;
    c->len = (uint32_t)len;
    c->count = (uint32_t)n;
    c->mint = ts[0];
    c->maxt = ts[n - 1];
    return 0;
}

/* Put (t, v) into sealed chunk i (not exported).  Returns a HEAD_ code. */
static int merge_into(hseries *s, uint32_t i, sm_ms_t t, double v, uint32_t max) {
    hchunk *c = &s->ch[i];
    sm_ms_t *ts;
    double *vs;
    if (decode_chunk(c, &ts, &vs, 1)) return SM_ENOMEM;
    size_t n = c->count, lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ts[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    int result = HEAD_APPENDED;
    if (lo < n && ts[lo] == t) {
        if (sm_f64_bits(vs[lo]) == sm_f64_bits(v)) {
            sm_free(ts);
            sm_free(vs);
            return HEAD_DUPLICATE;
        }
        vs[lo] = v;
        result = HEAD_REPLACED;
    } else {
        memmove(ts + lo + 1, ts + lo, (n - lo) * sizeof *ts);
        memmove(vs + lo + 1, vs + lo, (n - lo) * sizeof *vs);
        ts[lo] = t;
        vs[lo] = v;
        n++;
    }
    int rc;
    if (n > 2 * (size_t)max && chunks_reserve(s, 1) == 0) {
        /* Split a chunk that late samples made large. */
        size_t half = n / 2;
        c = &s->ch[i];
        memmove(&s->ch[i + 2], &s->ch[i + 1], (s->nch - i - 1) * sizeof *s->ch);
        s->nch++;
        s->ch[i + 1] = (hchunk){0};
        rc = encode_into(&s->ch[i], ts, vs, half);
        if (!rc) rc = encode_into(&s->ch[i + 1], ts + half, vs + half, n - half);
    } else {
        rc = encode_into(&s->ch[i], ts, vs, n);
    }
    sm_free(ts);
    sm_free(vs);
    return rc ? rc : result;
}

/* Insert a one-sample chunk at position i. */
static int insert_single(hseries *s, uint32_t i, sm_ms_t t, double v) {
    if (chunks_reserve(s, 1)) return SM_ENOMEM;
    hchunk c = {0};
    if (encode_into(&c, &t, &v, 1)) return SM_ENOMEM;
    memmove(&s->ch[i + 1], &s->ch[i], (s->nch - i) * sizeof *s->ch);
    s->ch[i] = c;
    s->nch++;
    return HEAD_APPENDED;
}

/* A sample at or before the series' newest time. */
static int append_late(head *h, hseries *s, sm_ms_t t, double v) {
    /* Into the open chunk's span: rebuild the open chunk. */
    if (s->open && chunk_enc_count(s->open) && t >= chunk_enc_mint(s->open)) {
        if (seal(s)) return SM_ENOMEM;
        /* Now the last sealed chunk; fall through to the sealed path. */
    }
    /* Find the first chunk with maxt >= t, skipping exported ones' spans
     * only when they are exported (never modified). */
    uint32_t lo = 0, hi = s->nch;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->ch[mid].maxt < t) lo = mid + 1;
        else hi = mid;
    }
    /* Candidates: chunk lo (covers or follows t) and chunk lo-1 (before). */
    for (uint32_t k = lo; k < s->nch && s->ch[k].mint <= t; k++)
        if (!s->ch[k].exported) return merge_into(s, k, t, v, h->o.chunk_max_samples);
    /* An exported chunk holds t's span: the sample goes in a chunk of its
     * own after it (the exported bytes never change). */
    if (lo < s->nch && s->ch[lo].mint <= t) {
        uint32_t k = lo;
        while (k < s->nch && s->ch[k].mint <= t) k++;
        return insert_single(s, k, t, v);
    }
    /* In a gap: join a neighbour in the same range window, else a new chunk. */
    sm_ms_t win = window_of(h, t);
    if (lo > 0 && !s->ch[lo - 1].exported && window_of(h, s->ch[lo - 1].mint) == win &&
        s->ch[lo - 1].count < h->o.chunk_max_samples)
        return merge_into(s, lo - 1, t, v, h->o.chunk_max_samples);
    if (lo < s->nch && !s->ch[lo].exported && window_of(h, s->ch[lo].mint) == win &&
        s->ch[lo].count < h->o.chunk_max_samples)
        return merge_into(s, lo, t, v, h->o.chunk_max_samples);
    return insert_single(s, lo, t, v);
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
    int rc;
    if (t > series_maxt(s)) {
        rc = 0;
        if (!s->open && !(s->open = chunk_enc_new())) rc = SM_ENOMEM;
        uint32_t cnt = s->open ? chunk_enc_count(s->open) : 0;
        if (!rc && cnt && (cnt >= h->o.chunk_max_samples ||
                           window_of(h, chunk_enc_mint(s->open)) != window_of(h, t)))
            rc = seal(s);
        if (!rc) rc = chunk_enc_append(s->open, t, v);
        if (rc) rc = SM_ENOMEM;
        else rc = HEAD_APPENDED;
    } else {
        rc = append_late(h, s, t, v);
    }
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_unlock(&h->idx);
    if (rc >= 0) {
        sm_ms_t cur = atomic_load(&h->maxt);
        while (t > cur && !atomic_compare_exchange_weak(&h->maxt, &cur, t)) {
        }
    }
    return rc;
}

/* ---- reading ---- */

static int cmp_series_labels(const void *a, const void *b) {
    return sm_labels_cmp(&(*(hseries *const *)a)->ls, &(*(hseries *const *)b)->ls);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The series matching every matcher, sorted by labels.  idx held (read).
 * *out is sm_malloc'd. */
static int match_series(head *h, const sm_matcher *ms, size_t nms, hseries ***out, size_t *n) {
    /* Start from the smallest positive postings list: a matcher that does
     * not match "" can only select series that have the label. */
    uint64_t *cand = NULL;
    size_t ncand = 0;
    bool have = false;
    char key[8192];
    for (size_t i = 0; i < nms; i++) {
        const sm_matcher *m = &ms[i];
        if (sm_matcher_matches_empty(m)) continue;
        uint64_t *set = NULL;
        size_t nset = 0, capset = 0;
        size_t nl = strlen(m->name);
        if (m->type == SM_MATCH_EQ) {
            size_t vl = strlen(m->value);
            if (nl + vl + 1 <= sizeof key) {
                memcpy(key, m->name, nl);
                key[nl] = '\xff';
                memcpy(key + nl + 1, m->value, vl);
                sm_entry *e = strmap_find(&h->postings, key, nl + 1 + vl);
                if (e) {
                    posting *p = e->val;
                    set = sm_malloc((p->n ? p->n : 1) * sizeof *set);
                    if (!set) goto nomem;
                    memcpy(set, p->refs, p->n * sizeof *set);
                    nset = p->n;
                }
            } else {
                continue; /* unindexed value: filter below */
            }
        } else {
            sm_entry *ne = strmap_find(&h->names, m->name, nl);
            if (ne) {
                name_values *nv = ne->val;
                for (size_t k = 0; k < nv->n; k++) {
                    if (!sm_matcher_matches(m, nv->v[k])) continue;
                    size_t vl = strlen(nv->v[k]);
                    memcpy(key, m->name, nl);
                    key[nl] = '\xff';
                    memcpy(key + nl + 1, nv->v[k], vl);
                    sm_entry *e = strmap_find(&h->postings, key, nl + 1 + vl);
                    if (!e) continue;
                    posting *p = e->val;
                    if (nset + p->n > capset) {
                        capset = (nset + p->n) * 2;
                        uint64_t *ns = sm_realloc(set, capset * sizeof *ns);
                        if (!ns) {
                            sm_free(set);
                            goto nomem;
                        }
                        set = ns;
                    }
                    memcpy(set + nset, p->refs, p->n * sizeof *set);
                    nset += p->n;
                }
                if (nset) qsort(set, nset, sizeof *set, cmp_u64);
            }
        }
        if (!have) {
            sm_free(cand);
            cand = set;
            ncand = nset;
            have = true;
        } else { /* intersect */
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
        if (have && ncand == 0) break;
    }
    hseries **v = NULL;
    size_t nv = 0;
    if (have) {
        v = sm_malloc((ncand ? ncand : 1) * sizeof *v);
        if (!v) goto nomem;
        for (size_t i = 0; i < ncand; i++) {
            if (i && cand[i] == cand[i - 1]) continue;
            hseries *s = by_ref(h, cand[i]);
            if (s) v[nv++] = s;
        }
    } else { /* every matcher matches "": scan all series */
        v = sm_malloc((h->nseries ? h->nseries : 1) * sizeof *v);
        if (!v) goto nomem;
        for (size_t i = 0; i < h->nbyref; i++)
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

/* Does the series have a sample in [mint, maxt]?  Series lock held. */
static bool has_data(const hseries *s, sm_ms_t mint, sm_ms_t maxt) {
    for (uint32_t i = 0; i < s->nch; i++)
        if (s->ch[i].mint <= maxt && s->ch[i].maxt >= mint) return true;
    return s->open && chunk_enc_count(s->open) && chunk_enc_mint(s->open) <= maxt &&
           chunk_enc_maxt(s->open) >= mint;
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
    sm_buf b = SM_BUF_INIT;
    for (size_t i = 0; i < n && !rc; i++) {
        hseries *s = v[i];
        pthread_mutex_lock(&s->mu);
        uint32_t cnt = 0;
        for (uint32_t c = 0; c < s->nch; c++) cnt += s->ch[c].mint <= maxt && s->ch[c].maxt >= mint;
        bool open = s->open && chunk_enc_count(s->open) && chunk_enc_mint(s->open) <= maxt &&
                    chunk_enc_maxt(s->open) >= mint;
        cnt += open;
        if (cnt == 0) {
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        tsdb_chunk_ref *refs = sm_arena_alloc(a, cnt * sizeof *refs);
        if (!refs) rc = SM_ENOMEM;
        uint32_t r = 0;
        for (uint32_t c = 0; c < s->nch && !rc; c++) {
            const hchunk *ch = &s->ch[c];
            if (ch->mint > maxt || ch->maxt < mint) continue;
            uint8_t *copy = sm_arena_alloc(a, ch->len);
            if (!copy) {
                rc = SM_ENOMEM;
                break;
            }
            memcpy(copy, ch->data, ch->len);
            refs[r++] = (tsdb_chunk_ref){ch->mint, ch->maxt, copy, ch->len, prio};
        }
        if (!rc && open) {
            sm_buf_clear(&b);
            uint8_t *copy = NULL;
            if (chunk_enc_finish(s->open, &b) == 0) copy = sm_arena_alloc(a, b.len);
            if (!copy) rc = SM_ENOMEM;
            else {
                memcpy(copy, b.p, b.len);
                refs[r++] = (tsdb_chunk_ref){chunk_enc_mint(s->open), chunk_enc_maxt(s->open), copy,
                                             (uint32_t)b.len, prio};
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (rc) break;
        /* Late samples can leave chunks out of mint order only around
         * exported ones; keep the list sorted by mint. */
        for (uint32_t x = 1; x < r; x++) {
            tsdb_chunk_ref t = refs[x];
            uint32_t y = x;
            while (y > 0 && refs[y - 1].mint > t.mint) {
                refs[y] = refs[y - 1];
                y--;
            }
            refs[y] = t;
        }
        if (sm_labels_copy(a, &s->ls, &res[k].labels)) {
            rc = SM_ENOMEM;
            break;
        }
        res[k].chunks = refs;
        res[k].nchunks = r;
        k++;
    }
    sm_buf_fini(&b);
    pthread_rwlock_unlock(&h->idx);
    sm_free(v);
    if (rc) return SM_ERR(err, rc, "out of memory selecting head series");
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
        if (k) qsort(res, k, sizeof *res, cmp_cstr);
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

int head_export(head *h, sm_ms_t maxt, head_export_fn fn, void *ctx, sm_ms_t *mint_out,
                sm_error *err) {
    pthread_mutex_lock(&h->export_mu);
    pthread_rwlock_rdlock(&h->idx);
    hseries **v;
    size_t n;
    int rc = match_series(h, NULL, 0, &v, &n) ? SM_ENOMEM : 0;
    pthread_rwlock_unlock(&h->idx);
    if (rc) {
        pthread_mutex_unlock(&h->export_mu);
        return SM_ERR(err, rc, "out of memory exporting the head");
    }
    /* Series pointers stay valid: only head_truncate frees series, and it
     * takes export_mu. */
    sm_ms_t mint = SM_MS_MAX;
    tsdb_chunk_ref *refs = NULL;
    uint32_t caprefs = 0;
    size_t done = 0; /* series whose chunks were marked */
    for (size_t i = 0; i < n && !rc; i++) {
        hseries *s = v[i];
        pthread_mutex_lock(&s->mu);
        if (s->open && chunk_enc_count(s->open) && chunk_enc_maxt(s->open) < maxt && seal(s)) {
            pthread_mutex_unlock(&s->mu);
            rc = SM_ENOMEM;
            break;
        }
        uint32_t cnt = 0;
        for (uint32_t c = 0; c < s->nch; c++) cnt += !s->ch[c].exported && s->ch[c].maxt < maxt;
        if (cnt > caprefs) {
            tsdb_chunk_ref *nr = sm_realloc(refs, cnt * sizeof *nr);
            if (!nr) {
                pthread_mutex_unlock(&s->mu);
                rc = SM_ENOMEM;
                break;
            }
            refs = nr;
            caprefs = cnt;
        }
        uint32_t r = 0;
        for (uint32_t c = 0; c < s->nch; c++) {
            hchunk *ch = &s->ch[c];
            if (ch->exported || ch->maxt >= maxt) continue;
            ch->exported = true;
            refs[r++] = (tsdb_chunk_ref){ch->mint, ch->maxt, ch->data, ch->len, 0};
            if (ch->mint < mint) mint = ch->mint;
        }
        pthread_mutex_unlock(&s->mu);
        done = i + 1;
        if (r) {
            rc = fn(ctx, &s->ls, refs, r);
            if (rc && !(err && err->code)) SM_ERR(err, rc, "writing exported series failed");
        }
    }
    if (rc) {
        /* Undo: nothing stays detached.  Chunks marked in this export are
         * those below maxt; earlier exports were truncated already. */
        for (size_t i = 0; i < done; i++) {
            hseries *s = v[i];
            pthread_mutex_lock(&s->mu);
            for (uint32_t c = 0; c < s->nch; c++)
                if (s->ch[c].maxt < maxt) s->ch[c].exported = false;
            pthread_mutex_unlock(&s->mu);
        }
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
        uint32_t k = 0;
        for (uint32_t c = 0; c < s->nch; c++) {
            if (s->ch[c].exported) sm_free(s->ch[c].data);
            else s->ch[k++] = s->ch[c];
        }
        s->nch = k;
        bool empty = k == 0 && !(s->open && chunk_enc_count(s->open));
        if (!empty) continue;
        /* Unlink from the table. */
        hseries **pp = &h->tab[s->hash & (h->ntab - 1)];
        while (*pp && *pp != s) pp = &(*pp)->next;
        if (*pp) *pp = s->next;
        h->byref[i] = NULL;
        h->nseries--;
        series_free(h, s);
        dropped++;
    }
    if (dropped) rebuild_postings(h);
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
        bytes += sizeof *s + s->ls.n * sizeof *s->ls.v + s->capch * sizeof *s->ch;
        for (uint32_t c = 0; c < s->nch; c++) {
            out->chunks++;
            out->samples += s->ch[c].count;
            bytes += s->ch[c].len;
            if (s->ch[c].mint < out->mint) out->mint = s->ch[c].mint;
            if (s->ch[c].maxt > out->maxt) out->maxt = s->ch[c].maxt;
        }
        if (s->open) {
            bytes += chunk_enc_mem_bytes(s->open);
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
    /* Symbols and postings, roughly: keys plus entries. */
    bytes += h->syms.n * (sizeof(sm_entry) + 16) + h->postings.n * (sizeof(sm_entry) + sizeof(posting) + 24);
    pthread_rwlock_unlock(&h->idx);
    out->bytes = bytes;
}
