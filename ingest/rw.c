/* SPDX-License-Identifier: Apache-2.0
 *
 * rw.c - remote_write request bodies: snappy block, then protobuf-c with an
 * arena allocator, then label checks per series (see rw.h).  The decoder
 * is protobuf-c's (generated from ingest/proto/remote_write.proto); what is
 * done here to keep it cheap is the allocator (a bump pointer, no call into
 * the arena per message or string) and a single pass over its result.
 */
#include "rw.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_write.pb-c.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/labels.h"

void rw_limits_default(rw_limits *l) {
    l->max_decoded_bytes = 32u << 20;
    l->max_labels = 64;
    l->max_label_bytes = 4096;
}

/* protobuf-c allocates every message, string and array of a request
 * through this: a bump pointer over blocks carved from the request's arena,
 * with 8-byte alignment (protobuf-c needs no more; the arena's 16 would
 * waste a third of the many short label strings).  The fast path is a
 * compare and an add; a block is sized from the decompressed length, so a
 * request takes a handful of blocks.  Nothing is freed before the arena. */
typedef struct bump {
    sm_arena *a;
    uint8_t *cur, *end;
    size_t block_bytes;
} bump;

/* A new block for an allocation of need bytes that the current one has no
 * room for.  Out of line, so that bump_alloc's fast path saves no
 * registers (their pushes and pops were most of its 4 % of the server's
 * time under bench_ingest). */
static __attribute__((noinline)) void *bump_refill(bump *b, size_t need) {
    size_t cap = need > b->block_bytes ? need : b->block_bytes;
    uint8_t *p = sm_arena_alloc(b->a, cap);
    if (!p) return NULL;
    if (cap == need) return p; /* a one-off big array: keep the current block */
    b->cur = p + need;
    b->end = p + cap;
    return p;
}

static void *bump_alloc(void *data, size_t n) {
    bump *b = data;
    size_t need = n ? (n + 7) & ~(size_t)7 : 8;
    if (need < n) return NULL;
    if ((size_t)(b->end - b->cur) < need) return bump_refill(b, need);
    void *p = b->cur;
    b->cur += need;
    return p;
}

static void bump_free(void *data, void *p) {
    (void)data;
    (void)p; /* freed with the arena */
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* Labels of one series into v (room for ts->n_labels) and their lengths
 * into len (room for twice that, see sm_labels_hash_len): sorted, empty
 * values dropped, the size limits checked, *hash (OUT) their
 * sm_labels_hash.  0, or SM_EINVAL with err set.  The label rules
 * (sm_labels_check) are left to the caller: it checks them only for the
 * series the head does not have, whose labels nobody checked yet.  Each
 * string is measured once, here, and the hash uses those lengths. */
static int series_labels(const Prometheus__TimeSeries *ts, const rw_limits *lim, sm_label *v, uint32_t *len,
                         sm_labels *ls, uint64_t *hash, sm_error *err) {
    if (ts->n_labels > lim->max_labels)
        return SM_ERR(err, SM_EINVAL, "%zu labels, more than the limit of %u", ts->n_labels, lim->max_labels);
    uint32_t n = 0;
    bool sorted = true;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *name = ts->labels[i]->name, *value = ts->labels[i]->value;
        if (!name) name = "";
        if (!value) value = "";
        size_t nlen = strlen(name), vlen = strlen(value);
        if (nlen > lim->max_label_bytes || vlen > lim->max_label_bytes)
            return SM_ERR(err, SM_EINVAL, "label %.64s is longer than %u bytes", name, lim->max_label_bytes);
        if (!vlen) continue; /* an empty value means the label is absent */
        /* (sorted names mostly differ in their first byte) */
        if (n && sorted && (unsigned char)v[n - 1].name[0] >= (unsigned char)name[0] &&
            (v[n - 1].name[0] != name[0] || strcmp(v[n - 1].name, name) > 0))
            sorted = false;
        len[2 * n] = (uint32_t)nlen;
        len[2 * n + 1] = (uint32_t)vlen;
        v[n++] = (sm_label){name, value};
    }
    if (n == 0) return SM_ERR(err, SM_EINVAL, "empty label set");
    if (!sorted) qsort(v, n, sizeof *v, cmp_label);
    *ls = (sm_labels){v, n};
    *hash = sorted ? sm_labels_hash_len(ls, len) : sm_labels_hash(ls);
    return 0;
}

/* Note series i as left out because of lerr.  The one with the lowest
 * index is described (the label rules are checked after the other
 * checks, so a later series may have been described first). */
static void reject_series(rw_request *out, const Prometheus__TimeSeries *ts, size_t i, const sm_error *lerr) {
    out->rejected_series++;
    out->rejected_samples += ts->n_samples;
    if (out->reject.code && out->reject.index < (int64_t)i) return;
    char first[160] = "";
    if (ts->n_labels) {
        snprintf(first, sizeof first, " (first label %.60s=\"%.60s\")",
                 ts->labels[0]->name ? ts->labels[0]->name : "",
                 ts->labels[0]->value ? ts->labels[0]->value : "");
    }
    out->reject.code = 0;
    SM_ERR(&out->reject, SM_EINVAL, "series %zu%s: %s", i, first, lerr->msg);
    out->reject.index = (int64_t)i;
}

int rw_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
              sm_error *err) {
    return rw_decode_for(NULL, body, len, lim, a, out, err);
}

int rw_decode_for(tsdb *db, const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
                  sm_error *err) {
    memset(out, 0, sizeof *out);
    size_t dlen;
    if (snappy_uncompressed_length((const char *)body, len, &dlen) != SNAPPY_OK)
        return SM_ERR(err, SM_ECORRUPT, "snappy: corrupt input (the body must be one snappy block)");
    if (dlen > lim->max_decoded_bytes)
        return SM_ERR(err, SM_ELIMIT, "request decompresses to %zu bytes, more than the limit of %zu",
                      dlen, lim->max_decoded_bytes);
    char *raw = sm_arena_alloc(a, dlen ? dlen : 1);
    if (!raw) return SM_ERR(err, SM_ENOMEM, "out of memory decompressing %zu bytes", dlen);
    size_t got = dlen;
    if (snappy_uncompress((const char *)body, len, raw, &got) != SNAPPY_OK || got != dlen)
        return SM_ERR(err, SM_ECORRUPT, "snappy: corrupt input");
    /* protobuf-c's structures take about 4 to 6 times the wire bytes for
     * remote_write's many small messages. */
    size_t bb = dlen * 2;
    bump bp = {a, NULL, NULL, bb < (64u << 10) ? (64u << 10) : bb > (4u << 20) ? (4u << 20) : bb};
    ProtobufCAllocator alloc = {bump_alloc, bump_free, &bp};
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(&alloc, dlen, (const uint8_t *)raw);
    if (!wr) {
        if (sm_arena_limit_hit(a)) return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
        return SM_ERR(err, SM_ECORRUPT, "invalid protobuf WriteRequest (%zu bytes after snappy)", dlen);
    }
    out->metadata = wr->n_metadata;
    /* One pass over the decoded message; the label, length and sample
     * arrays of every series come from allocations sized by a count
     * first. */
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        out->histograms += ts->n_histograms;
        out->exemplars += ts->n_exemplars;
        if (!ts->n_samples) continue;
        nl += ts->n_labels <= lim->max_labels ? ts->n_labels : 0;
        ns += ts->n_samples;
    }
    size_t nts = wr->n_timeseries ? wr->n_timeseries : 1;
    out->series = bump_alloc(&bp, nts * sizeof *out->series);
    out->hints = bump_alloc(&bp, nts * sizeof *out->hints);
    size_t *from = bump_alloc(&bp, nts * sizeof *from); /* request index of out->series[j] */
    sm_label *lv = bump_alloc(&bp, (nl ? nl : 1) * sizeof *lv);
    uint32_t *lenv = bump_alloc(&bp, (nl ? 2 * nl : 1) * sizeof *lenv);
    tsdb_sample *sv = bump_alloc(&bp, (ns ? ns : 1) * sizeof *sv);
    if (!out->series || !out->hints || !from || !lv || !lenv || !sv)
        return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
    sm_error lerr; /* only its code is reset per series: clearing all of it showed in profiles */
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        if (ts->n_samples == 0) continue;
        sm_labels ls;
        uint64_t hash = 0;
        lerr.code = 0;
        if (series_labels(ts, lim, lv, lenv, &ls, &hash, &lerr)) {
            reject_series(out, ts, i, &lerr);
            continue;
        }
        lv += ts->n_labels; /* room for every label, also the dropped ones */
        lenv += 2 * ts->n_labels;
        for (size_t k = 0; k < ts->n_samples; k++)
            sv[k] = (tsdb_sample){ts->samples[k]->timestamp, ts->samples[k]->value};
        from[out->n] = i;
        out->hints[out->n] = (tsdb_series_hint){hash, 0};
        out->series[out->n++] = (tsdb_series_in){ls, sv, (uint32_t)ts->n_samples};
        sv += ts->n_samples;
    }
    /* The label rules, for the series db does not have: a series it has
     * was created from labels that passed them, and these are equal. */
    if (db && out->n) tsdb_lookup(db, out->series, out->n, out->hints);
    size_t kept = 0;
    for (size_t j = 0; j < out->n; j++) {
        const tsdb_series_in *s = &out->series[j];
        lerr.code = 0;
        if (!out->hints[j].ref && sm_labels_check(&s->labels, true, &lerr)) {
            reject_series(out, wr->timeseries[from[j]], from[j], &lerr);
            continue;
        }
        out->samples += s->n;
        out->hints[kept] = out->hints[j];
        out->series[kept++] = *s;
    }
    out->n = kept;
    return 0;
}

int rw_encode(const tsdb_series_in *series, size_t n, sm_buf *out) {
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) return SM_ENOMEM;
    int rc = SM_ENOMEM;
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries **tsv = sm_arena_alloc(a, (n ? n : 1) * sizeof *tsv);
    if (!tsv) goto out;
    for (size_t i = 0; i < n; i++) {
        Prometheus__TimeSeries *ts = sm_arena_alloc(a, sizeof *ts);
        if (!ts) goto out;
        prometheus__time_series__init(ts);
        const tsdb_series_in *s = &series[i];
        ts->n_labels = s->labels.n;
        ts->labels = sm_arena_alloc(a, (s->labels.n ? s->labels.n : 1) * sizeof *ts->labels);
        Prometheus__Label *lv = sm_arena_alloc(a, (s->labels.n ? s->labels.n : 1) * sizeof *lv);
        ts->n_samples = s->n;
        ts->samples = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *ts->samples);
        Prometheus__Sample *sv = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *sv);
        if (!ts->labels || !lv || !ts->samples || !sv) goto out;
        for (uint32_t k = 0; k < s->labels.n; k++) {
            prometheus__label__init(&lv[k]);
            lv[k].name = (char *)s->labels.v[k].name;
            lv[k].value = (char *)s->labels.v[k].value;
            ts->labels[k] = &lv[k];
        }
        for (uint32_t k = 0; k < s->n; k++) {
            prometheus__sample__init(&sv[k]);
            sv[k].timestamp = s->samples[k].t;
            sv[k].value = s->samples[k].v;
            ts->samples[k] = &sv[k];
        }
        tsv[i] = ts;
    }
    wr.n_timeseries = n;
    wr.timeseries = tsv;
    size_t plen = prometheus__write_request__get_packed_size(&wr);
    uint8_t *pb = sm_malloc(plen ? plen : 1);
    if (!pb) goto out;
    prometheus__write_request__pack(&wr, pb);
    size_t clen = snappy_max_compressed_length(plen);
    if (sm_buf_reserve(out, clen)) {
        sm_free(pb);
        goto out;
    }
    if (snappy_compress((const char *)pb, plen, (char *)out->p + out->len, &clen) != SNAPPY_OK) {
        sm_free(pb);
        rc = SM_EINVAL;
        goto out;
    }
    out->len += clen;
    sm_free(pb);
    rc = 0;
out:
    sm_arena_free(a);
    return rc;
}
