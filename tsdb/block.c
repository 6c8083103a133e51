/* SPDX-License-Identifier: Apache-2.0
 *
 * block.c - immutable on-disk blocks.  Byte formats: docs/FORMAT.md, "Block".
 *
 * A block directory holds three files:
 *   chunks     a magic, then every series' chunks back to back, series by
 *              series in label order;
 *   index      a magic, then five sections, each framed as u32 length,
 *              payload, u32 CRC-32C: symbols, series, series offsets, label
 *              table, postings;
 *   meta.json  the block's ULID, time range, counts, level and a CRC-32C, in
 *              one canonical text that the reader requires byte for byte.
 *
 * The writer keeps the series' labels and chunk positions in memory (chunk
 * bytes go straight to the chunks file through io_uring) and writes the
 * index at commit, when it knows every symbol and posting.
 *
 * The reader maps both files, checks every section's CRC and parses every
 * series entry once at open (so a bad offset is found then, not during a
 * query), and keeps in memory only the symbols (as NUL-terminated strings),
 * the series offsets and the label table.  Chunk bytes are checked by a
 * CRC-32C per series, computed when a query first reads them and kept
 * (an atomic byte per series, so concurrent queries may both compute it).
 * block_verify goes further: it decodes every chunk and checks that the
 * postings are exactly the inverse of the series' labels.
 *
 * Not done here: repairing a damaged block (it is refused whole), and
 * deciding which blocks to compact or delete (blockset.c).
 */
#include "block.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/endian.h"
#include "base/sm_alloc.h"
#include "base/sm_hash.h"
#include "base/sm_time.h"
#include "chunk.h"
#include "fsutil.h"

#define CHUNKS_MAGIC "SMCHK\0\0\1"
#define INDEX_MAGIC "SMIDX\0\0\1"
#define MAGIC_LEN 8
#define NSECTIONS 5
#define META_VERSION 1
#define META_MAX 1024 /* bytes; the canonical text is under 400 */
#define MAX_LABELS 256 /* per series, enforced by the writer and the reader */
#define MAX_SERIES_CHUNKS (1u << 24) /* per series and block, likewise */

/* ---- ULIDs ---- */

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void block_ulid_new(sm_ms_t now_ms, char out[BLOCK_ULID_LEN + 1]) {
    uint8_t b[16];
    uint64_t t = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++) b[i] = (uint8_t)(t >> (40 - 8 * i));
    if (getrandom(b + 6, 10, 0) != 10) {
        uint64_t x = sm_mono_ns() ^ (uint64_t)getpid() << 32;
        for (int i = 6; i < 16; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            b[i] = (uint8_t)(x >> 56);
        }
    }
    /* 128 bits as 26 base32 digits, most significant first (2 pad bits). */
    for (int i = 0; i < 26; i++) {
        int bit = i * 5 - 2; /* position of this digit's top bit in b */
        unsigned v = 0;
        for (int k = 0; k < 5; k++) {
            int p = bit + k;
            unsigned x = p < 0 ? 0 : (b[p / 8] >> (7 - p % 8)) & 1u;
            v = (v << 1) | x;
        }
        out[i] = crockford[v];
    }
    out[BLOCK_ULID_LEN] = '\0';
}

/* ---- the writer ---- */

typedef struct wseries {
    sm_labels ls;       /* in the writer's arena */
    uint64_t off;       /* first chunk's offset in the chunks file */
    uint32_t nchunks;
    uint32_t chunk0;    /* index into the writer's chunk metas */
    uint32_t crc;       /* over the series' chunk bytes */
} wseries;

typedef struct wchunk {
    sm_ms_t mint, maxt;
    uint32_t len;
} wchunk;

/* A time column at least this long is shared: a reference costs about 6
 * bytes. */
#define TCOL_MIN_SHARE 8
#define TCOL_MAX_BYTES (64u << 20)

typedef struct tcol_slot {
    uint64_t hash;
    uint64_t off;        /* in the chunks file */
    const uint8_t *copy; /* NULL: empty slot */
    size_t len;
} tcol_slot;

struct block_writer {
    char *tmp, *final, *data_dir;
    char ulid[BLOCK_ULID_LEN + 1];
    sm_uring *ring;
    sm_ms_t mint, maxt;
    uint32_t level;
    sm_uring_file *chunks;
    sm_arena *a;
    wseries *s;
    size_t ns, caps;
    wchunk *c;
    size_t nc, capc;
    uint64_t nsamples;
    bool failed;        /* a write failed: only abort (or a failing commit) remains */
    /* Time columns written so far (open addressing on their hash), so that
     * a later identical one becomes a reference (docs/FORMAT.md, "Shared
     * time columns").  The copies live in tarena; past TCOL_MAX_BYTES of
     * them no new column is remembered (the known ones still match). */
    tcol_slot *tcols;
    size_t ntcols, captcols, tcol_bytes;
    sm_arena *tarena;
    sm_buf refbuf; /* one reference chunk being written */
    sm_buf expbuf; /* one shared-column chunk of another block, expanded */
};

int block_writer_new(const char *data_dir, sm_uring *ring, sm_ms_t mint, sm_ms_t maxt,
                     uint32_t level, block_writer **out, sm_error *err) {
    if (mint >= maxt) return SM_ERR(err, SM_EINVAL, "empty block range");
    block_writer *w = sm_calloc(1, sizeof *w);
    if (!w) return SM_ERR(err, SM_ENOMEM, "out of memory starting a block");
    w->ring = ring;
    w->mint = mint;
    w->maxt = maxt;
    w->level = level;
    block_ulid_new(sm_now_ms(), w->ulid);
    size_t dl = strlen(data_dir) + BLOCK_ULID_LEN + 8;
    w->tmp = sm_malloc(dl);
    w->final = sm_malloc(dl);
    w->data_dir = sm_strdup(data_dir);
    w->a = sm_arena_new(0, 0);
    int rc = 0;
    if (!w->tmp || !w->final || !w->data_dir || !w->a) {
        rc = SM_ERR(err, SM_ENOMEM, "out of memory starting a block");
        goto fail;
    }
    snprintf(w->tmp, dl, "%s/%s.tmp", data_dir, w->ulid);
    snprintf(w->final, dl, "%s/%s", data_dir, w->ulid);
    if ((rc = sm_fs_mkdir_p(w->tmp)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", w->tmp);
        goto fail;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/chunks", w->tmp);
    if ((rc = sm_uring_file_create(ring, path, &w->chunks)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", path);
        goto fail;
    }
    if (sm_uring_file_write(w->chunks, CHUNKS_MAGIC, MAGIC_LEN)) {
        rc = SM_ERR(err, SM_EIO, "cannot write %s", path);
        goto fail;
    }
    *out = w;
    return 0;
fail:
    block_writer_abort(w);
    return rc;
}

static void writer_free(block_writer *w) {
    sm_free(w->tmp);
    sm_free(w->final);
    sm_free(w->data_dir);
    sm_arena_free(w->a);
    sm_arena_free(w->tarena);
    sm_free(w->tcols);
    sm_buf_fini(&w->refbuf);
    sm_buf_fini(&w->expbuf);
    sm_free(w->s);
    sm_free(w->c);
    sm_free(w);
}

void block_writer_abort(block_writer *w) {
    if (!w) return;
    if (w->chunks) sm_uring_file_abort(w->chunks);
    if (w->tmp) sm_fs_remove_all(w->tmp);
    writer_free(w);
}

static int tcols_grow(block_writer *w) {
    size_t cap = w->captcols ? w->captcols * 2 : 4096;
    tcol_slot *t = sm_calloc(cap, sizeof *t);
    if (!t) return SM_ENOMEM;
    for (size_t i = 0; i < w->captcols; i++) {
        if (!w->tcols[i].copy) continue;
        size_t j = (size_t)w->tcols[i].hash & (cap - 1);
        while (t[j].copy) j = (j + 1) & (cap - 1);
        t[j] = w->tcols[i];
    }
    sm_free(w->tcols);
    w->tcols = t;
    w->captcols = cap;
    return 0;
}

/* The chunk about to be written at the chunks file's current offset: when
 * its time column is one written before, point *data at its reference form
 * (in w->refbuf); else remember the column.  0 or SM_ENOMEM. */
static int shared_time_column(block_writer *w, const uint8_t **data, uint32_t *len) {
    size_t off, tlen;
    if (chunk_time_column(*data, *len, &off, &tlen) || tlen < TCOL_MIN_SHARE) return 0;
    const uint8_t *col = *data + off;
    uint64_t h = sm_hash_bytes(col, tlen, 0x5453434f4cull);
    if (w->ntcols * 2 >= w->captcols && tcols_grow(w)) return SM_ENOMEM;
    size_t j = (size_t)h & (w->captcols - 1);
    for (; w->tcols[j].copy; j = (j + 1) & (w->captcols - 1)) {
        tcol_slot *s = &w->tcols[j];
        if (s->hash != h || s->len != tlen || memcmp(s->copy, col, tlen) != 0) continue;
        sm_buf_clear(&w->refbuf);
        int rc = chunk_ref_encode(*data, *len, s->off, &w->refbuf);
        if (rc) return rc == SM_ENOMEM ? SM_ENOMEM : 0; /* not shareable after all: write it whole */
        if (w->refbuf.len >= *len) return 0;
        *data = w->refbuf.p;
        *len = (uint32_t)w->refbuf.len;
        return 0;
    }
    if (w->tcol_bytes + tlen > TCOL_MAX_BYTES) return 0;
    if (!w->tarena && !(w->tarena = sm_arena_new(0, 0))) return SM_ENOMEM;
    uint8_t *copy = sm_arena_alloc(w->tarena, tlen);
    if (!copy) return SM_ENOMEM;
    memcpy(copy, col, tlen);
    w->tcols[j] = (tcol_slot){h, sm_uring_file_offset(w->chunks) + off, copy, tlen};
    w->ntcols++;
    w->tcol_bytes += tlen;
    return 0;
}

int block_writer_add_series(block_writer *w, const sm_labels *ls, const tsdb_chunk_ref *chunks,
                            uint32_t n, sm_error *err) {
    if (w->failed) return SM_ERR(err, SM_EIO, "block writer for %s failed earlier", w->tmp);
    if (n == 0) return 0;
    if (w->ns && sm_labels_cmp(&w->s[w->ns - 1].ls, ls) >= 0)
        return SM_ERR(err, SM_EINVAL, "block series out of order");
    if (ls->n == 0 || ls->n > MAX_LABELS)
        return SM_ERR(err, ls->n ? SM_ELIMIT : SM_EINVAL, "a block series has %u labels (1 to %d allowed)",
                      ls->n, MAX_LABELS);
    for (uint32_t i = 1; i < ls->n; i++)
        if (strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0)
            return SM_ERR(err, SM_EINVAL, "block series labels not sorted by name");
    if (n > MAX_SERIES_CHUNKS || w->ns >= UINT32_MAX - 1 || w->nc + n >= UINT32_MAX)
        return SM_ERR(err, SM_ELIMIT, "too many series or chunks for one block");
    /* Validate everything before writing anything: a refused series leaves
     * the writer as it was. */
    uint64_t samples = 0;
    for (uint32_t i = 0; i < n; i++) {
        const tsdb_chunk_ref *c = &chunks[i];
        if (c->mint < w->mint || c->maxt >= w->maxt || c->mint > c->maxt)
            return SM_ERR(err, SM_EINVAL, "chunk [%lld, %lld] outside the block [%lld, %lld)",
                          (long long)c->mint, (long long)c->maxt, (long long)w->mint,
                          (long long)w->maxt);
        if (i && c->mint <= chunks[i - 1].maxt)
            return SM_ERR(err, SM_EINVAL, "overlapping chunks in one block series");
        chunk_info ci;
        if (!c->data || c->len == 0 || chunk_info_read(c->data, c->len, &ci) ||
            chunk_is_ref(c->data, c->len) != (c->tcol != NULL))
            return SM_ERR(err, SM_EINVAL, "a chunk to be written to a block is corrupt");
        if (ci.mint != c->mint || ci.maxt != c->maxt)
            return SM_ERR(err, SM_EINVAL, "chunk reference [%lld, %lld] disagrees with its chunk [%lld, %lld]",
                          (long long)c->mint, (long long)c->maxt, (long long)ci.mint, (long long)ci.maxt);
        samples += ci.count;
    }
    if (w->ns == w->caps) {
        size_t nc = w->caps ? w->caps * 2 : 1024;
        wseries *ns = sm_realloc(w->s, nc * sizeof *ns);
        if (!ns) return SM_ERR(err, SM_ENOMEM, "out of memory writing a block");
        w->s = ns;
        w->caps = nc;
    }
    if (w->nc + n > w->capc) {
        size_t nc = w->capc ? w->capc * 2 : 4096;
        while (nc < w->nc + n) nc *= 2;
        wchunk *c = sm_realloc(w->c, nc * sizeof *c);
        if (!c) return SM_ERR(err, SM_ENOMEM, "out of memory writing a block");
        w->c = c;
        w->capc = nc;
    }
    wseries *s = &w->s[w->ns];
    if (sm_labels_copy(w->a, ls, &s->ls)) return SM_ERR(err, SM_ENOMEM, "out of memory writing a block");
    s->off = sm_uring_file_offset(w->chunks);
    s->nchunks = n;
    s->chunk0 = (uint32_t)w->nc;
    uint32_t crc = 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *data = chunks[i].data;
        uint32_t len = chunks[i].len;
        int rc = 0;
        if (chunks[i].tcol) {
            /* From a block being compacted: its column is in that block's
             * file, so the chunk is expanded before it is shared again. */
            sm_buf_clear(&w->expbuf);
            rc = chunk_ref_expand_to(data, len, chunks[i].tcol, chunks[i].tlen, &w->expbuf);
            data = w->expbuf.p;
            len = (uint32_t)w->expbuf.len;
        }
        if (!rc) rc = shared_time_column(w, &data, &len);
        if (rc || sm_uring_file_write(w->chunks, data, len)) {
            /* The chunks file now holds part of a series: nothing after
             * this can be consistent, so the writer only aborts from here. */
            w->failed = true;
            return rc == SM_ENOMEM ? SM_ERR(err, rc, "out of memory writing a block")
                   : rc ? SM_ERR(err, rc, "a shared-column chunk to be written to a block is corrupt")
                        : SM_ERR(err, SM_EIO, "cannot write block chunks in %s", w->tmp);
        }
        crc = sm_crc32c(crc, data, len);
        w->c[w->nc + i] = (wchunk){chunks[i].mint, chunks[i].maxt, len};
    }
    s->crc = crc;
    w->nc += n;
    w->nsamples += samples;
    w->ns++;
    return 0;
}

/* Symbols: every distinct string, sorted, with ids by position. */
typedef struct symtab {
    const char **v;
    size_t n;
    /* open-addressing map string -> id */
    const char **keys;
    uint32_t *ids;
    size_t cap;
} symtab;

static int cmp_cstr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint64_t hstr(const char *s) { return sm_hash_bytes(s, strlen(s), 7); }

static int sym_build(symtab *t, const wseries *s, size_t ns) {
    size_t total = 0;
    for (size_t i = 0; i < ns; i++) total += 2 * s[i].ls.n;
    t->cap = 64;
    while (t->cap < 2 * total) t->cap *= 2;
    t->keys = sm_calloc(t->cap, sizeof *t->keys);
    t->ids = sm_calloc(t->cap, sizeof *t->ids);
    t->v = sm_malloc((total ? total : 1) * sizeof *t->v);
    if (!t->keys || !t->ids || !t->v) return SM_ENOMEM;
    t->n = 0;
    for (size_t i = 0; i < ns; i++)
        for (uint32_t k = 0; k < s[i].ls.n; k++)
            for (int j = 0; j < 2; j++) {
                const char *str = j ? s[i].ls.v[k].value : s[i].ls.v[k].name;
                size_t p = hstr(str) & (t->cap - 1);
                while (t->keys[p] && strcmp(t->keys[p], str) != 0) p = (p + 1) & (t->cap - 1);
                if (!t->keys[p]) {
                    t->keys[p] = str;
                    t->v[t->n++] = str;
                }
            }
    qsort(t->v, t->n, sizeof *t->v, cmp_cstr);
    for (size_t i = 0; i < t->n; i++) {
        size_t p = hstr(t->v[i]) & (t->cap - 1);
        while (strcmp(t->keys[p], t->v[i]) != 0) p = (p + 1) & (t->cap - 1);
        t->ids[p] = (uint32_t)i;
    }
    return 0;
}

static uint32_t sym_id(const symtab *t, const char *s) {
    size_t p = hstr(s) & (t->cap - 1);
    while (strcmp(t->keys[p], s) != 0) p = (p + 1) & (t->cap - 1);
    return t->ids[p];
}

static void sym_free(symtab *t) {
    sm_free(t->v);
    sm_free(t->keys);
    sm_free(t->ids);
}

/* A (name id, value id, series id) triple for building postings. */
typedef struct triple {
    uint32_t name, value;
    uint32_t series;
} triple;

static int cmp_triple(const void *a, const void *b) {
    const triple *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

/* Frame and write one section. */
static int write_section(sm_uring_file *f, const sm_buf *b) {
    uint8_t hdr[4], tail[4];
    sm_store_le32(hdr, (uint32_t)b->len);
    sm_store_le32(tail, sm_crc32c(0, b->p, b->len));
    if (sm_uring_file_write(f, hdr, 4) || sm_uring_file_write(f, b->p, b->len) ||
        sm_uring_file_write(f, tail, 4))
        return SM_EIO;
    return 0;
}

static int write_index(block_writer *w, const char *path, uint64_t *bytes, sm_error *err) {
    symtab st = {0};
    sm_buf sec = SM_BUF_INIT;
    triple *tr = NULL;
    uint64_t *offs = NULL;
    sm_uring_file *f = NULL;
    int rc = sym_build(&st, w->s, w->ns);
    if (rc) goto nomem;
    if ((rc = sm_uring_file_create(w->ring, path, &f)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", path);
        goto out;
    }
    if (sm_uring_file_write(f, INDEX_MAGIC, MAGIC_LEN)) goto io;

    /* 1. symbols */
    if (sm_buf_put_uvarint(&sec, st.n)) goto nomem;
    for (size_t i = 0; i < st.n; i++)
        if (sm_buf_put_str(&sec, st.v[i], strlen(st.v[i]))) goto nomem;
    if (write_section(f, &sec)) goto io;

    /* 2. series, remembering where each starts */
    sm_buf_clear(&sec);
    offs = sm_malloc((w->ns ? w->ns : 1) * sizeof *offs);
    size_t ntr = 0;
    for (size_t i = 0; i < w->ns; i++) ntr += w->s[i].ls.n;
    tr = sm_malloc((ntr ? ntr : 1) * sizeof *tr);
    if (!offs || !tr) goto nomem;
    if (sm_buf_put_uvarint(&sec, w->ns)) goto nomem;
    ntr = 0;
    for (size_t i = 0; i < w->ns; i++) {
        const wseries *s = &w->s[i];
        offs[i] = sec.len;
        if (sm_buf_put_uvarint(&sec, s->ls.n)) goto nomem;
        for (uint32_t k = 0; k < s->ls.n; k++) {
            uint32_t nid = sym_id(&st, s->ls.v[k].name), vid = sym_id(&st, s->ls.v[k].value);
            if (sm_buf_put_uvarint(&sec, nid) || sm_buf_put_uvarint(&sec, vid)) goto nomem;
            tr[ntr++] = (triple){nid, vid, (uint32_t)i};
        }
        if (sm_buf_put_uvarint(&sec, s->off) || sm_buf_put_le32(&sec, s->crc) ||
            sm_buf_put_uvarint(&sec, s->nchunks))
            goto nomem;
        sm_ms_t prev = w->mint;
        for (uint32_t k = 0; k < s->nchunks; k++) {
            const wchunk *c = &w->c[s->chunk0 + k];
            if (sm_buf_put_uvarint(&sec, (uint64_t)c->mint - (uint64_t)prev) ||
                sm_buf_put_uvarint(&sec, (uint64_t)c->maxt - (uint64_t)c->mint) ||
                sm_buf_put_uvarint(&sec, c->len))
                goto nomem;
            prev = c->maxt;
        }
    }
    if (write_section(f, &sec)) goto io;

    /* 3. series offsets, fixed width for direct lookup */
    sm_buf_clear(&sec);
    for (size_t i = 0; i < w->ns; i++)
        if (sm_buf_put_le64(&sec, offs[i])) goto nomem;
    if (write_section(f, &sec)) goto io;

    /* 4. label table and 5. postings */
    if (ntr) qsort(tr, ntr, sizeof *tr, cmp_triple);
    sm_buf post = SM_BUF_INIT;
    sm_buf_clear(&sec);
    size_t nnames = 0;
    for (size_t i = 0; i < ntr; i++) nnames += i == 0 || tr[i].name != tr[i - 1].name;
    if (sm_buf_put_uvarint(&sec, nnames)) goto nomem_post;
    for (size_t i = 0; i < ntr;) {
        size_t j = i, nvals = 0;
        while (j < ntr && tr[j].name == tr[i].name) {
            nvals += j == i || tr[j].value != tr[j - 1].value;
            j++;
        }
        if (sm_buf_put_uvarint(&sec, tr[i].name) || sm_buf_put_uvarint(&sec, nvals)) goto nomem_post;
        for (size_t k = i; k < j;) {
            size_t e = k;
            while (e < j && tr[e].value == tr[k].value) e++;
            if (sm_buf_put_uvarint(&sec, tr[k].value) || sm_buf_put_uvarint(&sec, post.len))
                goto nomem_post;
            if (sm_buf_put_uvarint(&post, e - k)) goto nomem_post;
            uint32_t last = 0;
            for (size_t x = k; x < e; x++) {
                if (sm_buf_put_uvarint(&post, tr[x].series - last)) goto nomem_post;
                last = tr[x].series;
            }
            k = e;
        }
        i = j;
    }
    if (write_section(f, &sec) || write_section(f, &post)) {
        sm_buf_fini(&post);
        goto io;
    }
    sm_buf_fini(&post);
    *bytes = sm_uring_file_offset(f);
    rc = sm_uring_file_close(f);
    f = NULL;
    if (rc) rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot write %s", path);
    goto out;
nomem_post:
    sm_buf_fini(&post);
nomem:
    rc = SM_ERR(err, SM_ENOMEM, "out of memory writing a block index");
    goto out;
io:
    rc = SM_ERR(err, SM_EIO, "cannot write %s", path);
out:
    if (f) sm_uring_file_abort(f);
    sm_buf_fini(&sec);
    sm_free(tr);
    sm_free(offs);
    sym_free(&st);
    return rc;
}

/* meta.json is the canonical text below and nothing else: the reader
 * rebuilds it from the values it parsed and requires the file to be byte for
 * byte the same, so any edit that is not a change of a value is refused, and
 * the last field, a CRC-32C of every byte before its line, catches changes of
 * values.  Returns the length (or what it would need, like snprintf). */
static int meta_format(const block_meta *m, char *buf, size_t cap) {
    int n = snprintf(buf, cap,
                     "{\n  \"version\": %d,\n  \"ulid\": \"%s\",\n  \"minTime\": %" PRId64
                     ",\n  \"maxTime\": %" PRId64 ",\n  \"stats\": {\"numSeries\": %" PRIu64
                     ", \"numChunks\": %" PRIu64 ", \"numSamples\": %" PRIu64 ", \"numBytes\": %" PRIu64
                     "},\n  \"compaction\": {\"level\": %u},\n",
                     META_VERSION, m->ulid, m->mint, m->maxt, m->nseries, m->nchunks, m->nsamples,
                     m->bytes, m->level);
    if (n < 0 || (size_t)n >= cap) return n;
    uint32_t crc = sm_crc32c(0, buf, (size_t)n);
    /* Fixed width, so that the length does not depend on the CRC (numBytes
     * counts this file). */
    int k = snprintf(buf + n, cap - (size_t)n, "  \"crc32c\": \"%08" PRIx32 "\"\n}\n", crc);
    return k < 0 ? k : n + k;
}

int block_writer_commit(block_writer *w, block_meta *meta, sm_error *err) {
    char path[4200];
    if (w->failed) {
        int rc = SM_ERR(err, SM_EIO, "block writer for %s failed earlier", w->tmp);
        block_writer_abort(w);
        return rc;
    }
    int rc = sm_uring_file_close(w->chunks);
    uint64_t chunk_bytes = 0, index_bytes = 0;
    w->chunks = NULL;
    if (rc) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot write block chunks in %s", w->tmp);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/chunks", w->tmp);
    struct stat stt;
    if (stat(path, &stt) == 0) chunk_bytes = (uint64_t)stt.st_size;
    snprintf(path, sizeof path, "%s/index", w->tmp);
    if ((rc = write_index(w, path, &index_bytes, err)) != 0) goto fail;

    block_meta m = {0};
    memcpy(m.ulid, w->ulid, sizeof m.ulid);
    m.mint = w->mint;
    m.maxt = w->maxt;
    m.nseries = w->ns;
    m.nchunks = w->nc;
    m.nsamples = w->nsamples;
    m.level = w->level;
    char buf[META_MAX];
    /* numBytes counts the meta file too, whose length depends on numBytes
     * (and on nothing else that varies: the CRC has a fixed width).  The
     * length only grows from round to round, so this reaches the fixed
     * point in two or three rounds. */
    int len = 0;
    for (int round = 0; round < 8; round++) {
        m.bytes = chunk_bytes + index_bytes + (uint64_t)len;
        int nl = meta_format(&m, buf, sizeof buf);
        if (nl == len) break;
        len = nl;
    }
    snprintf(path, sizeof path, "%s/meta.json", w->tmp);
    sm_uring_file *f;
    if ((rc = sm_uring_file_create(w->ring, path, &f)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot create %s", path);
        goto fail;
    }
    if (sm_uring_file_write(f, buf, (size_t)len)) {
        sm_uring_file_abort(f);
        rc = SM_ERR(err, SM_EIO, "cannot write %s", path);
        goto fail;
    }
    if ((rc = sm_uring_file_close(f)) != 0 || (rc = sm_fs_fsync_dir(w->ring, w->tmp)) != 0 ||
        (rc = sm_fs_rename_durable(w->ring, w->tmp, w->final)) != 0) {
        rc = SM_ERR_SYS(err, SM_EIO, -rc, "cannot publish block %s", w->final);
        goto fail;
    }
    *meta = m;
    writer_free(w);
    return 0;
fail:
    block_writer_abort(w);
    return rc;
}

/* ---- the reader ---- */

typedef struct lvalue {
    uint32_t value;   /* symbol id */
    uint64_t post;    /* offset into the postings section */
} lvalue;

typedef struct lname {
    uint32_t name;    /* symbol id */
    lvalue *v;        /* sorted by value (symbol ids sort as strings) */
    uint32_t n;
} lname;

struct block {
    _Atomic int refs;
    _Atomic bool deleted;
    char *dir;
    block_meta meta;
    uint8_t *chunks;  /* mapping */
    size_t chunks_len;
    uint8_t *index;
    size_t index_len;
    /* symbols */
    char **sym;       /* NUL-terminated copies */
    uint32_t nsym;
    char *symbuf;
    /* sections */
    const uint8_t *series;
    size_t series_len;
    const uint8_t *offs; /* u64 LE per series */
    uint64_t nseries;
    const uint8_t *post;
    size_t post_len;
    lname *names;     /* sorted by name */
    uint32_t nnames;
    lvalue *lvs;      /* storage for every name's values */
    _Atomic uint8_t *crc_ok; /* per series: 0 unchecked, 1 good, 2 bad */
};

static int map_ro(const char *path, uint8_t **p, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *len = (size_t)st.st_size;
    *p = NULL;
    if (*len) {
        void *m = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int e = -errno;
            close(fd);
            return e;
        }
        *p = m;
    }
    close(fd);
    return 0;
}

static void block_destroy(block *b) {
    if (b->chunks) munmap(b->chunks, b->chunks_len);
    if (b->index) munmap(b->index, b->index_len);
    sm_free(b->sym);
    sm_free(b->symbuf);
    sm_free(b->names);
    sm_free(b->lvs);
    sm_free((void *)b->crc_ok);
    if (atomic_load(&b->deleted) && b->dir) sm_fs_remove_all(b->dir);
    sm_free(b->dir);
    sm_free(b);
}

/* Read the number after "key": at *p (which must point at that text). */
static bool meta_num(const char **p, const char *key, int64_t *out) {
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl) != 0) return false;
    const char *q = *p + kl;
    if (*q != '-' && (*q < '0' || *q > '9')) return false;
    char *end;
    errno = 0;
    long long v = strtoll(q, &end, 10);
    if (end == q || errno) return false;
    *out = v;
    *p = end;
    return true;
}

static bool meta_skip(const char **p, const char *text) {
    size_t n = strlen(text);
    if (strncmp(*p, text, n) != 0) return false;
    *p += n;
    return true;
}

/* Parse meta.json strictly: the fields in the writer's order, then the file
 * must equal the canonical text for those values (CRC included). */
static int read_meta(block *b, size_t *meta_len, sm_error *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.json", b->dir);
    FILE *f = fopen(path, "r");
    if (!f) return SM_ERR_SYS(err, SM_ECORRUPT, errno, "cannot read %s", path);
    char buf[META_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    if (n >= META_MAX) return SM_CORRUPT(err, "%s: too long", path);
    buf[n] = '\0';
    if (memchr(buf, 0, n)) return SM_CORRUPT(err, "%s: NUL byte", path);
    int64_t version, mint, maxt, ns, nc, nsm, nb, level;
    const char *p = buf;
    if (!meta_skip(&p, "{\n  ") || !meta_num(&p, "\"version\": ", &version))
        return SM_CORRUPT(err, "%s: no version", path);
    if (version != META_VERSION)
        return SM_CORRUPT(err, "%s: unknown version %lld", path, (long long)version);
    if (!meta_skip(&p, ",\n  \"ulid\": \"")) return SM_CORRUPT(err, "%s: no ulid", path);
    for (int i = 0; i < BLOCK_ULID_LEN; i++)
        if (!p[i] || !strchr(crockford, p[i])) return SM_CORRUPT(err, "%s: bad ulid", path);
    memcpy(b->meta.ulid, p, BLOCK_ULID_LEN);
    b->meta.ulid[BLOCK_ULID_LEN] = '\0';
    p += BLOCK_ULID_LEN;
    if (!meta_skip(&p, "\",\n  ") || !meta_num(&p, "\"minTime\": ", &mint) || !meta_skip(&p, ",\n  ") ||
        !meta_num(&p, "\"maxTime\": ", &maxt) || !meta_skip(&p, ",\n  \"stats\": {") ||
        !meta_num(&p, "\"numSeries\": ", &ns) || !meta_skip(&p, ", ") ||
        !meta_num(&p, "\"numChunks\": ", &nc) || !meta_skip(&p, ", ") ||
        !meta_num(&p, "\"numSamples\": ", &nsm) || !meta_skip(&p, ", ") ||
        !meta_num(&p, "\"numBytes\": ", &nb) || !meta_skip(&p, "},\n  \"compaction\": {") ||
        !meta_num(&p, "\"level\": ", &level) || !meta_skip(&p, "},\n  \"crc32c\": \""))
        return SM_CORRUPT(err, "%s: missing or misplaced fields", path);
    if (mint >= maxt || ns < 0 || nc < 0 || nsm < 0 || nb < 0 || level < 0 || level > 1000)
        return SM_CORRUPT(err, "%s: values out of range", path);
    b->meta.mint = mint;
    b->meta.maxt = maxt;
    b->meta.nseries = (uint64_t)ns;
    b->meta.nchunks = (uint64_t)nc;
    b->meta.nsamples = (uint64_t)nsm;
    b->meta.bytes = (uint64_t)nb;
    b->meta.level = (uint32_t)level;
    char canon[META_MAX];
    int cl = meta_format(&b->meta, canon, sizeof canon);
    if (cl < 0 || (size_t)cl != n || memcmp(canon, buf, n) != 0)
        return SM_CORRUPT(err, "%s: not in canonical form or its crc32c does not match", path);
    *meta_len = n;
    return 0;
}

/* Parse series entry `id`: labels as symbol ids into (ids), chunk list.
 * All reads bounded; 0 or SM_ECORRUPT. */
typedef struct sentry {
    uint32_t nl;
    uint32_t lab[2 * MAX_LABELS]; /* name, value ids */
    uint64_t off;        /* chunks offset */
    uint32_t crc;
    uint32_t nchunks;
    sm_rd chunks;        /* reader positioned at the chunk list */
} sentry;

static int series_read(const block *b, uint64_t id, sentry *e) {
    if (id >= b->nseries) return SM_ECORRUPT;
    uint64_t off = sm_load_le64(b->offs + 8 * id);
    if (off >= b->series_len) return SM_ECORRUPT;
    sm_rd r;
    sm_rd_init(&r, b->series + off, b->series_len - off);
    uint64_t nl, x, y;
    if (sm_rd_uvarint(&r, &nl) || nl == 0 || nl > MAX_LABELS) return SM_ECORRUPT;
    e->nl = (uint32_t)nl;
    for (uint32_t i = 0; i < nl; i++) {
        if (sm_rd_uvarint(&r, &x) || sm_rd_uvarint(&r, &y) || x >= b->nsym || y >= b->nsym) return SM_ECORRUPT;
        e->lab[2 * i] = (uint32_t)x;
        e->lab[2 * i + 1] = (uint32_t)y;
    }
    uint64_t nch;
    if (sm_rd_uvarint(&r, &e->off) || sm_rd_le32(&r, &e->crc) || sm_rd_uvarint(&r, &nch) || nch == 0 ||
        nch > MAX_SERIES_CHUNKS)
        return SM_ECORRUPT;
    e->nchunks = (uint32_t)nch;
    e->chunks = r;
    return 0;
}

/* Label names strictly increasing (symbol ids sort as their strings). */
static bool labels_sorted(const sentry *e) {
    for (uint32_t i = 1; i < e->nl; i++)
        if (e->lab[2 * i] <= e->lab[2 * (i - 1)]) return false;
    return true;
}

/* sm_labels_cmp on symbol ids: pair by pair, name then value; a prefix
 * sorts first. */
static int entry_cmp(const sentry *a, const sentry *b) {
    uint32_t n = a->nl < b->nl ? a->nl : b->nl;
    for (uint32_t i = 0; i < 2 * n; i++)
        if (a->lab[i] != b->lab[i]) return a->lab[i] < b->lab[i] ? -1 : 1;
    return (a->nl > b->nl) - (a->nl < b->nl);
}

/* Next chunk of an entry: times and byte range, validated. */
static int chunk_next(const block *b, sm_rd *r, sm_ms_t *prev, uint64_t *pos, tsdb_chunk_ref *c,
                      bool first) {
    uint64_t d, span, len;
    if (sm_rd_uvarint(r, &d) || sm_rd_uvarint(r, &span) || sm_rd_uvarint(r, &len)) return SM_ECORRUPT;
    if (!first && d == 0) return SM_ECORRUPT; /* chunks of a series do not overlap */
    /* Unsigned arithmetic: meta's range may span more than INT64_MAX.
     * meta.mint <= *prev < meta.maxt holds on entry. */
    if (d >= (uint64_t)b->meta.maxt - (uint64_t)*prev) return SM_ECORRUPT;
    sm_ms_t mint = (sm_ms_t)((uint64_t)*prev + d);
    if (span >= (uint64_t)b->meta.maxt - (uint64_t)mint) return SM_ECORRUPT;
    sm_ms_t maxt = (sm_ms_t)((uint64_t)mint + span);
    if (len == 0 || len > UINT32_MAX || len > b->chunks_len || *pos > b->chunks_len - len) return SM_ECORRUPT;
    c->mint = mint;
    c->maxt = maxt;
    c->data = b->chunks + *pos;
    c->len = (uint32_t)len;
    c->tcol = NULL;
    c->tlen = 0;
    *pos += len;
    *prev = maxt;
    return 0;
}

/* A chunk whose time column is a reference into this block's chunks file,
 * expanded in a into the chunk it stands for; others are left as they
 * are.  0, SM_ECORRUPT or SM_ENOMEM. */
static int chunk_resolve(const block *b, tsdb_chunk_ref *c, sm_arena *a) {
    if (!chunk_is_ref(c->data, c->len)) return 0;
    return chunk_ref_expand(b->chunks, b->chunks_len, c->data, c->len, a, &c->data, &c->len);
}

/* Read one framed section at *off. */
static int section(const block *b, size_t *off, const uint8_t **p, size_t *len) {
    if (b->index_len - *off < 8) return SM_ECORRUPT;
    uint32_t n = sm_load_le32(b->index + *off);
    if (n > b->index_len - *off - 8) return SM_ECORRUPT;
    const uint8_t *q = b->index + *off + 4;
    if (sm_crc32c(0, q, n) != sm_load_le32(q + n)) return SM_ECORRUPT;
    *p = q;
    *len = n;
    *off += 8 + (size_t)n;
    return 0;
}

static int parse_index(block *b, sm_error *err) {
    if (b->index_len < MAGIC_LEN || memcmp(b->index, INDEX_MAGIC, MAGIC_LEN) != 0)
        return SM_CORRUPT(err, "%s/index: bad magic or version", b->dir);
    if (b->chunks_len < MAGIC_LEN || memcmp(b->chunks, CHUNKS_MAGIC, MAGIC_LEN) != 0)
        return SM_CORRUPT(err, "%s/chunks: bad magic or version", b->dir);
    const uint8_t *sec[NSECTIONS];
    size_t slen[NSECTIONS], off = MAGIC_LEN;
    for (int i = 0; i < NSECTIONS; i++)
        if (section(b, &off, &sec[i], &slen[i]))
            return SM_CORRUPT(err, "%s/index: section %d is damaged (length or CRC)", b->dir, i + 1);
    if (off != b->index_len) return SM_CORRUPT(err, "%s/index: trailing bytes", b->dir);

    /* 1. symbols */
    sm_rd r;
    sm_rd_init(&r, sec[0], slen[0]);
    uint64_t nsym;
    if (sm_rd_uvarint(&r, &nsym) || nsym > slen[0]) return SM_CORRUPT(err, "%s/index: bad symbol count", b->dir);
    b->sym = sm_malloc((nsym ? nsym : 1) * sizeof *b->sym);
    b->symbuf = sm_malloc(slen[0] + nsym + 1);
    if (!b->sym || !b->symbuf) return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
    char *w = b->symbuf;
    for (uint64_t i = 0; i < nsym; i++) {
        const char *s;
        size_t n;
        if (sm_rd_str(&r, &s, &n) || memchr(s, 0, n)) return SM_CORRUPT(err, "%s/index: bad symbol %llu", b->dir, (unsigned long long)i);
        memcpy(w, s, n);
        w[n] = '\0';
        b->sym[i] = w;
        w += n + 1;
        if (i && strcmp(b->sym[i - 1], b->sym[i]) >= 0) return SM_CORRUPT(err, "%s/index: symbols not sorted", b->dir);
    }
    b->nsym = (uint32_t)nsym;

    /* 2./3. series and offsets */
    b->series = sec[1];
    b->series_len = slen[1];
    sm_rd_init(&r, sec[1], slen[1]);
    uint64_t ns;
    if (sm_rd_uvarint(&r, &ns) || ns > slen[2] / 8 || slen[2] != ns * 8 || ns != b->meta.nseries)
        return SM_CORRUPT(err, "%s/index: series count disagrees", b->dir);
    b->offs = sec[2];
    b->nseries = ns;
    b->crc_ok = sm_calloc(ns ? ns : 1, 1);
    if (!b->crc_ok) return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
    /* Every entry once: bounds of labels, chunk offsets and lengths. */
    uint64_t pos = MAGIC_LEN, nchunks = 0;
    size_t expect = (size_t)(r.p - b->series); /* entries are back to back */
    sentry *pe = sm_malloc(2 * sizeof *pe); /* this entry and the previous one */
    if (!pe) return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
    for (uint64_t i = 0; i < ns; i++) {
        sentry *ep = &pe[i & 1], *prevp = &pe[(i & 1) ^ 1];
        if (sm_load_le64(b->offs + 8 * i) != expect || series_read(b, i, ep) || ep->off != pos) {
            sm_free(pe);
            return SM_CORRUPT(err, "%s/index: series %llu is damaged", b->dir, (unsigned long long)i);
        }
        if (!labels_sorted(ep) || (i && entry_cmp(prevp, ep) >= 0)) {
            sm_free(pe);
            return SM_CORRUPT(err, "%s/index: series %llu is out of order", b->dir, (unsigned long long)i);
        }
        sm_rd cr = ep->chunks;
        sm_ms_t prev = b->meta.mint;
        for (uint32_t k = 0; k < ep->nchunks; k++) {
            tsdb_chunk_ref c;
            if (chunk_next(b, &cr, &prev, &pos, &c, k == 0)) {
                sm_free(pe);
                return SM_CORRUPT(err, "%s/index: series %llu chunk %u is out of bounds", b->dir,
                                  (unsigned long long)i, k);
            }
        }
        nchunks += ep->nchunks;
        expect = (size_t)(cr.p - b->series);
    }
    sm_free(pe);
    if (expect != b->series_len) return SM_CORRUPT(err, "%s/index: trailing series bytes", b->dir);
    if (pos != b->chunks_len) return SM_CORRUPT(err, "%s/chunks: size disagrees with the index", b->dir);
    if (nchunks != b->meta.nchunks) return SM_CORRUPT(err, "%s: chunk count disagrees", b->dir);

    /* 4. label table */
    b->post = sec[4];
    b->post_len = slen[4];
    sm_rd_init(&r, sec[3], slen[3]);
    uint64_t nn;
    if (sm_rd_uvarint(&r, &nn) || nn > b->nsym) return SM_CORRUPT(err, "%s/index: bad label table", b->dir);
    b->names = sm_calloc(nn ? nn : 1, sizeof *b->names);
    size_t cap = 64, used = 0;
    b->lvs = sm_malloc(cap * sizeof *b->lvs);
    if (!b->names || !b->lvs) return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
    for (uint64_t i = 0; i < nn; i++) {
        uint64_t name, nv;
        if (sm_rd_uvarint(&r, &name) || name >= b->nsym || sm_rd_uvarint(&r, &nv) || nv == 0 ||
            nv > b->nsym || nv > sm_rd_left(&r) / 2 ||
            (i && name <= b->names[i - 1].name))
            return SM_CORRUPT(err, "%s/index: bad label table entry", b->dir);
        b->names[i].name = (uint32_t)name;
        b->names[i].n = (uint32_t)nv;
        if (used + nv > cap) {
            while (used + nv > cap) cap *= 2;
            lvalue *n2 = sm_realloc(b->lvs, cap * sizeof *n2);
            if (!n2) return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
            b->lvs = n2;
        }
        for (uint64_t k = 0; k < nv; k++) {
            uint64_t v, po;
            if (sm_rd_uvarint(&r, &v) || v >= b->nsym || sm_rd_uvarint(&r, &po) || po >= b->post_len ||
                (k && v <= b->lvs[used + k - 1].value))
                return SM_CORRUPT(err, "%s/index: bad label value entry", b->dir);
            b->lvs[used + k] = (lvalue){(uint32_t)v, po};
        }
        used += nv;
    }
    if (sm_rd_left(&r)) return SM_CORRUPT(err, "%s/index: trailing label table bytes", b->dir);
    /* Now that lvs will not move, point the names at their values. */
    used = 0;
    for (uint64_t i = 0; i < nn; i++) {
        b->names[i].v = b->lvs + used;
        used += b->names[i].n;
    }
    b->nnames = (uint32_t)nn;
    return 0;
}

int block_open(const char *dir, block **out, sm_error *err) {
    block *b = sm_calloc(1, sizeof *b);
    if (!b || !(b->dir = sm_strdup(dir))) {
        sm_free(b);
        return SM_ERR(err, SM_ENOMEM, "out of memory opening a block");
    }
    atomic_store(&b->refs, 1);
    size_t meta_len = 0;
    int rc = read_meta(b, &meta_len, err);
    char path[4200];
    if (!rc) {
        snprintf(path, sizeof path, "%s/chunks", dir);
        int e = map_ro(path, &b->chunks, &b->chunks_len);
        if (e) rc = SM_ERR_SYS(err, SM_ECORRUPT, -e, "cannot map %s", path);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/index", dir);
        int e = map_ro(path, &b->index, &b->index_len);
        if (e) rc = SM_ERR_SYS(err, SM_ECORRUPT, -e, "cannot map %s", path);
    }
    if (!rc && b->meta.bytes != (uint64_t)b->chunks_len + b->index_len + meta_len)
        rc = SM_CORRUPT(err, "%s: file sizes (%zu + %zu + %zu) disagree with meta.json numBytes %llu", dir,
                        b->chunks_len, b->index_len, meta_len, (unsigned long long)b->meta.bytes);
    if (!rc) rc = parse_index(b, err);
    if (rc) {
        block_destroy(b);
        return rc;
    }
    *out = b;
    return 0;
}

void block_acquire(block *b) { atomic_fetch_add(&b->refs, 1); }

void block_release(block *b) {
    if (!b) return;
    if (atomic_fetch_sub(&b->refs, 1) == 1) block_destroy(b);
}

void block_mark_deleted(block *b) { atomic_store(&b->deleted, true); }
const block_meta *block_get_meta(const block *b) { return &b->meta; }
const char *block_dir(const block *b) { return b->dir; }

/* ---- lookups ---- */

static const lname *find_name(const block *b, const char *name) {
    uint32_t lo = 0, hi = b->nnames;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(b->sym[b->names[mid].name], name);
        if (c < 0) lo = mid + 1;
        else if (c > 0) hi = mid;
        else return &b->names[mid];
    }
    return NULL;
}

/* Append the postings list at off to *v. */
static int post_read(const block *b, uint64_t off, uint32_t **v, size_t *n, size_t *cap) {
    sm_rd r;
    sm_rd_init(&r, b->post + off, b->post_len - off);
    uint64_t cnt;
    if (sm_rd_uvarint(&r, &cnt) || cnt > b->nseries || cnt > sm_rd_left(&r)) return SM_ECORRUPT;
    if (*n + cnt > *cap) {
        size_t nc = (*n + cnt) * 2;
        uint32_t *nv = sm_realloc(*v, nc * sizeof *nv);
        if (!nv) return SM_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    uint64_t id = 0;
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t d;
        if (sm_rd_uvarint(&r, &d)) return SM_ECORRUPT;
        id += d;
        if (id >= b->nseries || (i && d == 0)) return SM_ECORRUPT;
        (*v)[(*n)++] = (uint32_t)id;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Candidate series ids (sorted, unique) from the matchers that do not match
 * "".  *all is set when no matcher narrows the set. */
static int candidates(const block *b, const sm_matcher *ms, size_t nms, uint32_t **out, size_t *nout,
                      bool *all) {
    uint32_t *cand = NULL;
    size_t ncand = 0;
    bool have = false;
    int rc = 0;
    for (size_t i = 0; i < nms && rc == 0; i++) {
        const sm_matcher *m = &ms[i];
        if (sm_matcher_matches_empty(m)) continue;
        uint32_t *set = NULL;
        size_t nset = 0, capset = 0;
        const lname *ln = find_name(b, m->name);
        if (ln) {
            if (m->type == SM_MATCH_EQ) {
                uint32_t lo = 0, hi = ln->n;
                while (lo < hi) {
                    uint32_t mid = (lo + hi) / 2;
                    int c = strcmp(b->sym[ln->v[mid].value], m->value);
                    if (c < 0) lo = mid + 1;
                    else if (c > 0) hi = mid;
                    else {
                        rc = post_read(b, ln->v[mid].post, &set, &nset, &capset);
                        break;
                    }
                }
            } else {
                for (uint32_t k = 0; k < ln->n && rc == 0; k++)
                    if (sm_matcher_matches(m, b->sym[ln->v[k].value]))
                        rc = post_read(b, ln->v[k].post, &set, &nset, &capset);
                if (nset > 1) {
                    qsort(set, nset, sizeof *set, cmp_u32);
                    size_t u = 0;
                    for (size_t k = 0; k < nset; k++)
                        if (u == 0 || set[u - 1] != set[k]) set[u++] = set[k];
                    nset = u;
                }
            }
        }
        if (!have) {
            cand = set;
            ncand = nset;
            have = true;
        } else {
            size_t x = 0, y = 0, k = 0;
            while (x < ncand && y < nset) {
                if (cand[x] < set[y]) x++;
                else if (cand[x] > set[y]) y++;
                else {
                    cand[k++] = cand[x];
                    x++;
                    y++;
                }
            }
            ncand = k;
            sm_free(set);
        }
    }
    if (rc) {
        sm_free(cand);
        return rc;
    }
    *all = !have;
    *out = cand;
    *nout = ncand;
    return 0;
}

static bool entry_matches(const block *b, const sentry *e, const sm_matcher *ms, size_t nms) {
    for (size_t i = 0; i < nms; i++) {
        const char *val = "";
        for (uint32_t k = 0; k < e->nl; k++)
            if (strcmp(b->sym[e->lab[2 * k]], ms[i].name) == 0) {
                val = b->sym[e->lab[2 * k + 1]];
                break;
            }
        if (!sm_matcher_matches(&ms[i], val)) return false;
    }
    return true;
}

/* Check (once) the CRC of a series' chunk bytes. */
static bool series_crc_ok(block *b, uint64_t id, const sentry *e) {
    uint8_t st = atomic_load(&b->crc_ok[id]);
    if (st) return st == 1;
    sm_rd r = e->chunks;
    sm_ms_t prev = b->meta.mint;
    uint64_t pos = e->off;
    uint32_t crc = 0;
    bool ok = true;
    for (uint32_t k = 0; k < e->nchunks && ok; k++) {
        tsdb_chunk_ref c;
        ok = chunk_next(b, &r, &prev, &pos, &c, k == 0) == 0;
        if (ok) crc = sm_crc32c(crc, c.data, c.len);
    }
    ok = ok && crc == e->crc;
    atomic_store(&b->crc_ok[id], ok ? 1 : 2);
    return ok;
}

int block_select(block *b, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                 uint32_t prio, sm_arena *a, tsdb_sel *out, sm_error *err) {
    if (mint >= b->meta.maxt || maxt < b->meta.mint) {
        out->v = NULL;
        out->n = 0;
        return 0;
    }
    uint32_t *cand;
    size_t ncand;
    bool all;
    int rc = candidates(b, ms, nms, &cand, &ncand, &all);
    if (rc) return rc == SM_ENOMEM ? SM_ERR(err, rc, "out of memory reading block %s", b->meta.ulid)
                                   : SM_CORRUPT(err, "block %s: damaged postings", b->meta.ulid);
    size_t n = all ? b->nseries : ncand;
    tsdb_sel_series *res = sm_arena_alloc(a, (n ? n : 1) * sizeof *res);
    if (!res) {
        sm_free(cand);
        return SM_ERR(err, SM_ENOMEM, "out of memory reading block %s", b->meta.ulid);
    }
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        uint64_t id = all ? i : cand[i];
        sentry e;
        if (series_read(b, id, &e)) {
            rc = SM_CORRUPT(err, "block %s: damaged series %llu", b->meta.ulid, (unsigned long long)id);
            break;
        }
        if (!entry_matches(b, &e, ms, nms)) continue;
        /* Chunks overlapping the range. */
        sm_rd r = e.chunks;
        sm_ms_t prev = b->meta.mint;
        uint64_t pos = e.off;
        tsdb_chunk_ref *refs = NULL;
        uint32_t nr = 0;
        for (uint32_t c = 0; c < e.nchunks; c++) {
            tsdb_chunk_ref ch;
            if (chunk_next(b, &r, &prev, &pos, &ch, c == 0)) {
                rc = SM_CORRUPT(err, "block %s: damaged chunk list", b->meta.ulid);
                break;
            }
            if (ch.maxt < mint || ch.mint > maxt) continue;
            if (!refs && !(refs = sm_arena_alloc(a, (e.nchunks - c) * sizeof *refs))) {
                rc = SM_ERR(err, SM_ENOMEM, "out of memory reading block %s", b->meta.ulid);
                break;
            }
            /* A shared time column is decoded where it lies (no copy). */
            if (chunk_is_ref(ch.data, ch.len) &&
                chunk_ref_column(b->chunks, b->chunks_len, ch.data, ch.len, &ch.tcol, &ch.tlen)) {
                rc = SM_CORRUPT(err, "block %s: damaged shared time column", b->meta.ulid);
                break;
            }
            ch.prio = prio;
            refs[nr++] = ch;
        }
        if (rc || nr == 0) continue;
        if (!series_crc_ok(b, id, &e)) {
            rc = SM_CORRUPT(err, "block %s: series %llu chunk data fails its CRC", b->meta.ulid,
                            (unsigned long long)id);
            break;
        }
        sm_label *lv = sm_arena_alloc(a, e.nl * sizeof *lv);
        if (!lv) {
            rc = SM_ERR(err, SM_ENOMEM, "out of memory reading block %s", b->meta.ulid);
            break;
        }
        for (uint32_t x = 0; x < e.nl; x++) {
            lv[x].name = b->sym[e.lab[2 * x]]; /* valid while the block is held */
            lv[x].value = b->sym[e.lab[2 * x + 1]];
        }
        res[k].labels = (sm_labels){lv, e.nl};
        res[k].chunks = refs;
        res[k].nchunks = nr;
        k++;
    }
    sm_free(cand);
    if (rc) return rc;
    out->v = res;
    out->n = k;
    return 0;
}

static int list_common(block *b, const char *name, const sm_matcher *ms, size_t nms, sm_arena *a,
                       const char ***outv, size_t *outn, sm_error *err) {
    if (nms == 0) {
        /* Straight from the label table. */
        if (!name) {
            const char **v = sm_arena_alloc(a, (b->nnames ? b->nnames : 1) * sizeof *v);
            if (!v) return SM_ERR(err, SM_ENOMEM, "out of memory");
            for (uint32_t i = 0; i < b->nnames; i++)
                if (!(v[i] = sm_arena_strdup(a, b->sym[b->names[i].name]))) return SM_ERR(err, SM_ENOMEM, "out of memory");
            *outv = v;
            *outn = b->nnames;
            return 0;
        }
        const lname *ln = find_name(b, name);
        uint32_t n = ln ? ln->n : 0;
        const char **v = sm_arena_alloc(a, (n ? n : 1) * sizeof *v);
        if (!v) return SM_ERR(err, SM_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < n; i++)
            if (!(v[i] = sm_arena_strdup(a, b->sym[ln->v[i].value]))) return SM_ERR(err, SM_ENOMEM, "out of memory");
        *outv = v;
        *outn = n;
        return 0;
    }
    /* Mark the symbols used by matching series. */
    uint8_t *used = sm_calloc(b->nsym ? b->nsym : 1, 1);
    uint32_t *cand = NULL;
    size_t ncand;
    bool all;
    int rc = used ? candidates(b, ms, nms, &cand, &ncand, &all) : SM_ENOMEM;
    if (rc) {
        sm_free(used);
        return rc == SM_ENOMEM ? SM_ERR(err, rc, "out of memory") : SM_CORRUPT(err, "block %s: damaged postings", b->meta.ulid);
    }
    size_t n = all ? b->nseries : ncand;
    for (size_t i = 0; i < n; i++) {
        sentry e;
        if (series_read(b, all ? i : cand[i], &e)) {
            rc = SM_CORRUPT(err, "block %s: damaged series", b->meta.ulid);
            break;
        }
        if (!entry_matches(b, &e, ms, nms)) continue;
        for (uint32_t x = 0; x < e.nl; x++) {
            if (!name) used[e.lab[2 * x]] = 1;
            else if (!strcmp(b->sym[e.lab[2 * x]], name)) used[e.lab[2 * x + 1]] = 1;
        }
    }
    sm_free(cand);
    size_t cnt = 0;
    for (uint32_t i = 0; i < b->nsym; i++) cnt += used[i];
    const char **v = rc ? NULL : sm_arena_alloc(a, (cnt ? cnt : 1) * sizeof *v);
    if (!rc && !v) rc = SM_ERR(err, SM_ENOMEM, "out of memory");
    if (!rc) {
        size_t k = 0;
        for (uint32_t i = 0; i < b->nsym && !rc; i++) /* symbol order is string order */
            if (used[i] && !(v[k++] = sm_arena_strdup(a, b->sym[i]))) rc = SM_ERR(err, SM_ENOMEM, "out of memory");
        if (!rc) {
            *outv = v;
            *outn = cnt;
        }
    }
    sm_free(used);
    return rc;
}

int block_label_names(block *b, const sm_matcher *ms, size_t nms, sm_arena *a,
                      const char ***names, size_t *n, sm_error *err) {
    return list_common(b, NULL, ms, nms, a, names, n, err);
}

int block_label_values(block *b, const char *name, const sm_matcher *ms, size_t nms,
                       sm_arena *a, const char ***values, size_t *n, sm_error *err) {
    return list_common(b, name, ms, nms, a, values, n, err);
}

/* Every postings entry names a series that has that label, and there are as
 * many entries as labels over all series: the postings are exactly the
 * inverse of the series section. */
static int verify_postings(block *b, uint64_t nlabels, sm_error *err) {
    uint32_t *ids = NULL;
    size_t cap = 0;
    uint64_t total = 0;
    int rc = 0;
    sentry *e = sm_malloc(sizeof *e);
    if (!e) return SM_ERR(err, SM_ENOMEM, "out of memory verifying a block");
    for (uint32_t i = 0; i < b->nnames && !rc; i++) {
        const lname *ln = &b->names[i];
        for (uint32_t k = 0; k < ln->n && !rc; k++) {
            size_t n = 0;
            rc = post_read(b, ln->v[k].post, &ids, &n, &cap);
            if (rc) {
                rc = rc == SM_ENOMEM ? SM_ERR(err, rc, "out of memory verifying a block")
                                     : SM_CORRUPT(err, "block %s: damaged postings list of %s=%s",
                                                  b->meta.ulid, b->sym[ln->name], b->sym[ln->v[k].value]);
                break;
            }
            if (n == 0) rc = SM_CORRUPT(err, "block %s: empty postings list", b->meta.ulid);
            for (size_t x = 0; x < n && !rc; x++) {
                bool has = false;
                if (series_read(b, ids[x], e) == 0)
                    for (uint32_t l = 0; l < e->nl && !has; l++)
                        has = e->lab[2 * l] == ln->name && e->lab[2 * l + 1] == ln->v[k].value;
                if (!has)
                    rc = SM_CORRUPT(err, "block %s: postings of %s=%s list series %u, which lacks it",
                                    b->meta.ulid, b->sym[ln->name], b->sym[ln->v[k].value], ids[x]);
            }
            total += n;
        }
    }
    if (!rc && total != nlabels)
        rc = SM_CORRUPT(err, "block %s: %llu postings entries for %llu labels", b->meta.ulid,
                        (unsigned long long)total, (unsigned long long)nlabels);
    sm_free(ids);
    sm_free(e);
    return rc;
}

int block_verify(block *b, sm_error *err) {
    sm_ms_t *ts = sm_malloc(CHUNK_MAX_SAMPLES * sizeof *ts);
    double *vs = sm_malloc(CHUNK_MAX_SAMPLES * sizeof *vs);
    sentry *e = sm_malloc(sizeof *e);
    sm_arena *a = sm_arena_new(0, 0); /* expanded shared-time-column chunks */
    int rc = ts && vs && e && a ? 0 : SM_ERR(err, SM_ENOMEM, "out of memory verifying a block");
    uint64_t samples = 0, nlabels = 0;
    for (uint64_t id = 0; id < b->nseries && !rc; id++) {
        if (series_read(b, id, e)) {
            rc = SM_CORRUPT(err, "block %s: damaged series %llu", b->meta.ulid, (unsigned long long)id);
            break;
        }
        nlabels += e->nl;
        if (!series_crc_ok(b, id, e)) {
            rc = SM_CORRUPT(err, "block %s: series %llu fails its CRC", b->meta.ulid, (unsigned long long)id);
            break;
        }
        sm_rd r = e->chunks;
        sm_ms_t prev = b->meta.mint;
        uint64_t pos = e->off;
        for (uint32_t c = 0; c < e->nchunks && !rc; c++) {
            tsdb_chunk_ref ch;
            chunk_info ci;
            size_t n = 0;
            /* chunk_decode checks the samples against the chunk's header;
             * the header must agree with the index entry, which open has
             * already bounded inside [meta.mint, meta.maxt). */
            sm_arena_reset(a);
            int xr = chunk_next(b, &r, &prev, &pos, &ch, c == 0);
            if (!xr) xr = chunk_resolve(b, &ch, a);
            if (xr == SM_ENOMEM) {
                rc = SM_ERR(err, SM_ENOMEM, "out of memory verifying a block");
                break;
            }
            if (xr || chunk_info_read(ch.data, ch.len, &ci) ||
                chunk_decode(ch.data, ch.len, ts, vs, CHUNK_MAX_SAMPLES, &n) || n == 0 ||
                ci.count != n || ci.mint != ch.mint || ci.maxt != ch.maxt || ts[0] != ch.mint ||
                ts[n - 1] != ch.maxt)
                rc = SM_CORRUPT(err, "block %s: series %llu chunk %u does not decode to its index entry",
                                b->meta.ulid, (unsigned long long)id, c);
            samples += n;
        }
    }
    if (!rc && samples != b->meta.nsamples)
        rc = SM_CORRUPT(err, "block %s: %llu samples, meta says %llu", b->meta.ulid,
                        (unsigned long long)samples, (unsigned long long)b->meta.nsamples);
    if (!rc) rc = verify_postings(b, nlabels, err);
    sm_arena_free(a);
    sm_free(ts);
    sm_free(vs);
    sm_free(e);
    return rc;
}
