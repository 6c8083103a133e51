/* SPDX-License-Identifier: Apache-2.0
 *
 * rw2.c - remote_write 2.0 request bodies (see rw2.h): snappy block, then
 * protobuf-c's unpack of ingest/proto/remote_write_v2.proto's RequestView
 * (the Request with its symbols as bytes, so their lengths are known) with
 * the request's arena as allocator, then per series: its labels_refs
 * resolved against the symbols, the limits and label rules of remote_write
 * 1.0, and its samples copied out.  The format is in docs/FORMAT.md,
 * "remote_write 2.0".  Encoding (rw2_encode) packs the full Request.
 *
 * Invariants of the decoded request (tests/ingest/test_rw2.c and
 * tests/fuzz/fuzz_remote_write2.c hold them against an independent reading
 * of protobuf-c's unpack):
 *   1. out->series are the valid series with samples, in request order,
 *      each with its labels sorted, no empty value, and passing
 *      sm_labels_check (or known to the database already);
 *   2. every series with samples that is not in out->series is counted in
 *      rejected_series and its samples in rejected_samples, and reject
 *      describes the one with the lowest index;
 *   3. a series with neither samples nor histograms is counted in
 *      rejected_series (with no samples); one with histograms only is
 *      counted in histograms and otherwise ignored, as 1.0 does;
 *   4. the sample values keep their exact bits.
 */
#include "rw2.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_write_v2.pb-c.h"
#include "tsdb/base/sm_alloc.h"
#include "tsdb/labels.h"

typedef Io__Prometheus__Write__V2__TimeSeries ts2;

/* protobuf-c allocates through this, from the request's arena, one byte
 * more than asked: a symbol (a bytes field, not NUL-terminated by
 * protobuf-c) is NUL-terminated in that byte. */
static void *arena_alloc(void *data, size_t n) { return n == SIZE_MAX ? NULL : sm_arena_alloc(data, n + 1); }

static void arena_free(void *data, void *p) {
    (void)data;
    (void)p; /* freed with the arena */
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* The symbols table: each symbol as a C string and its length as sent. */
typedef struct symtab {
    const char **s;
    uint32_t *len;
    size_t n;
} symtab;

/* Refs (n of them), pairs of indexes into the symbols: the index of the
 * first one out of range, n when all are in range; *odd (OUT) whether the
 * count is odd. */
static size_t refs_bad(const uint32_t *refs, size_t n, const symtab *st, bool *odd) {
    *odd = n % 2 != 0;
    for (size_t k = 0; k < n; k++)
        if (refs[k] >= st->n) return k;
    return n;
}

/* Why series ts (with its labels_refs) is left out before its labels are
 * read, into err; 0 when it is not.  Checks the refs of the series, of its
 * exemplars and of its metadata, and the label count limit. */
static int series_refs(const ts2 *ts, const symtab *st, const rw_limits *lim, sm_error *err) {
    bool odd;
    size_t k = refs_bad(ts->labels_refs, ts->n_labels_refs, st, &odd);
    if (odd) return SM_ERR(err, SM_EINVAL, "labels_refs has an odd count (%zu)", ts->n_labels_refs);
    if (k < ts->n_labels_refs)
        return SM_ERR(err, SM_EINVAL, "labels_refs[%zu] is %u, past the %zu symbols", k, ts->labels_refs[k], st->n);
    for (size_t e = 0; e < ts->n_exemplars; e++) {
        const Io__Prometheus__Write__V2__Exemplar *ex = ts->exemplars[e];
        k = refs_bad(ex->labels_refs, ex->n_labels_refs, st, &odd);
        if (odd || k < ex->n_labels_refs)
            return SM_ERR(err, SM_EINVAL, "exemplar %zu: labels_refs %s", e,
                          odd ? "has an odd count" : "point past the symbols");
    }
    const Io__Prometheus__Write__V2__Metadata *m = ts->metadata;
    if (m && (m->help_ref >= st->n || m->unit_ref >= st->n))
        return SM_ERR(err, SM_EINVAL, "metadata help_ref %u or unit_ref %u is past the %zu symbols", m->help_ref,
                      m->unit_ref, st->n);
    if (ts->n_labels_refs / 2 > lim->max_labels)
        return SM_ERR(err, SM_EINVAL, "%zu labels, more than the limit of %u", ts->n_labels_refs / 2,
                      lim->max_labels);
    return 0;
}

/* The labels of a series whose refs passed series_refs into v (room for
 * n_labels_refs / 2): the byte limit and NUL bytes checked, empty values
 * dropped, sorted; *ls (OUT) the set, *hash (OUT) its sm_labels_hash.  0 or
 * SM_EINVAL with err set (the series is left out).  The label rules
 * (sm_labels_check) are left to the caller, as in rw.c. */
static int series_labels(const ts2 *ts, const symtab *st, const rw_limits *lim, sm_label *v, sm_labels *ls,
                         uint64_t *hash, sm_error *err) {
    uint32_t n = 0;
    bool sorted = true;
    for (size_t k = 0; k + 1 < ts->n_labels_refs; k += 2) {
        uint32_t nr = ts->labels_refs[k], vr = ts->labels_refs[k + 1];
        const char *name = st->s[nr], *value = st->s[vr];
        if (st->len[nr] > lim->max_label_bytes || st->len[vr] > lim->max_label_bytes)
            return SM_ERR(err, SM_EINVAL, "label %.64s is longer than %u bytes", name, lim->max_label_bytes);
        if (strlen(name) != st->len[nr] || strlen(value) != st->len[vr])
            return SM_ERR(err, SM_EINVAL, "label %.64s: a NUL byte in its name or value", name);
        if (!st->len[vr]) continue; /* an empty value means the label is absent */
        if (n && strcmp(v[n - 1].name, name) > 0) sorted = false;
        v[n++] = (sm_label){name, value};
    }
    if (!sorted) qsort(v, n, sizeof *v, cmp_label);
    *ls = (sm_labels){v, n};
    if (n == 0) return SM_ERR(err, SM_EINVAL, "empty label set");
    *hash = sm_labels_hash(ls);
    return 0;
}

/* The first label of series ts as sent, into *l (OUT): l, or NULL when it
 * has none or its first refs are out of range. */
static const sm_label *first_label(const ts2 *ts, const symtab *st, sm_label *l) {
    if (ts->n_labels_refs < 2 || ts->labels_refs[0] >= st->n || ts->labels_refs[1] >= st->n) return NULL;
    *l = (sm_label){st->s[ts->labels_refs[0]], st->s[ts->labels_refs[1]]};
    return l;
}

int rw2_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
               sm_error *err) {
    return rw2_decode_for(NULL, body, len, lim, a, out, err);
}

int rw2_decode_for(tsdb *db, const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a,
                   rw_request *out, sm_error *err) {
    memset(out, 0, sizeof *out);
    const char *raw;
    size_t dlen;
    int urc = rw_unsnappy(body, len, lim, a, &raw, &dlen, err);
    if (urc) return urc;
    ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
    Io__Prometheus__Write__V2__RequestView *rq =
        io__prometheus__write__v2__request_view__unpack(&alloc, dlen, (const uint8_t *)raw);
    if (!rq) {
        if (sm_arena_limit_hit(a)) return rw_nomem(a, err);
        return SM_ERR(err, SM_ECORRUPT, "invalid protobuf io.prometheus.write.v2.Request (%zu bytes after snappy)",
                      dlen);
    }
    if ((rq->n_symbols && rq->symbols[0].len) || (!rq->n_symbols && rq->n_timeseries))
        return SM_ERR(err, SM_ECORRUPT, "the symbols table must start with the empty string (symbols[0] is %s)",
                      rq->n_symbols ? "not empty" : "missing");
    symtab st = {sm_arena_alloc(a, (rq->n_symbols + 1) * sizeof *st.s),
                 sm_arena_alloc(a, (rq->n_symbols + 1) * sizeof *st.len), rq->n_symbols};
    if (!st.s || !st.len) return rw_nomem(a, err);
    for (size_t k = 0; k < st.n; k++) {
        ProtobufCBinaryData *b = &rq->symbols[k];
        if (b->len > UINT32_MAX) return SM_ERR(err, SM_ECORRUPT, "symbol %zu is too long", k);
        if (b->data) b->data[b->len] = 0; /* (the byte arena_alloc keeps spare) */
        st.s[k] = b->data ? (const char *)b->data : "";
        st.len[k] = (uint32_t)b->len;
    }
    /* Pass 1: the counts, and which series reach their labels (flag[i]:
     * 1 when its refs passed, so the label and sample arrays are sized). */
    size_t nts = rq->n_timeseries ? rq->n_timeseries : 1, nl = 0, ns = 0;
    uint8_t *pass = sm_arena_alloc(a, nts);
    if (!pass) return rw_nomem(a, err);
    sm_error lerr; /* only its code is reset per series, as in rw.c */
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        const ts2 *ts = rq->timeseries[i];
        out->histograms += ts->n_histograms;
        out->exemplars += ts->n_exemplars;
        out->metadata += ts->metadata != NULL;
        pass[i] = 0;
        if (!ts->n_samples) {
            if (!ts->n_histograms) {
                lerr.code = 0;
                SM_ERR(&lerr, SM_EINVAL, "no samples or histograms");
                rw_reject_series(out, 0, i, NULL, &lerr);
            }
            continue;
        }
        lerr.code = 0;
        if (series_refs(ts, &st, lim, &lerr)) {
            sm_label first;
            rw_reject_series(out, ts->n_samples, i, first_label(ts, &st, &first), &lerr);
            continue;
        }
        pass[i] = 1;
        nl += ts->n_labels_refs / 2;
        ns += ts->n_samples;
    }
    out->series = sm_arena_alloc(a, nts * sizeof *out->series);
    out->hints = sm_arena_alloc(a, nts * sizeof *out->hints);
    size_t *from = sm_arena_alloc(a, nts * sizeof *from); /* the request index of out->series[j] */
    sm_label *lv = sm_arena_alloc(a, (nl ? nl : 1) * sizeof *lv);
    tsdb_sample *sv = sm_arena_alloc(a, (ns ? ns : 1) * sizeof *sv);
    if (!out->series || !out->hints || !from || !lv || !sv) return rw_nomem(a, err);
    /* Pass 2: labels and samples of the series whose refs passed. */
    for (size_t i = 0; i < rq->n_timeseries; i++) {
        if (!pass[i]) continue;
        const ts2 *ts = rq->timeseries[i];
        sm_labels ls;
        uint64_t hash = 0;
        lerr.code = 0;
        if (series_labels(ts, &st, lim, lv, &ls, &hash, &lerr)) {
            sm_label first;
            rw_reject_series(out, ts->n_samples, i, first_label(ts, &st, &first), &lerr);
            continue;
        }
        for (size_t k = 0; k < ts->n_samples; k++) /* (start_timestamp: read, not kept) */
            sv[k] = (tsdb_sample){ts->samples[k]->timestamp, ts->samples[k]->value};
        lv += ts->n_labels_refs / 2; /* room for every label, also the dropped ones */
        from[out->n] = i;
        out->hints[out->n] = (tsdb_series_hint){hash, 0};
        out->series[out->n++] = (tsdb_series_in){ls, sv, (uint32_t)ts->n_samples};
        sv += ts->n_samples;
    }
    /* The label rules, for the series db does not have (as in rw.c). */
    if (db && out->n) tsdb_lookup(db, out->series, out->n, out->hints);
    size_t kept = 0;
    for (size_t j = 0; j < out->n; j++) {
        const tsdb_series_in *s = &out->series[j];
        lerr.code = 0;
        if (!out->hints[j].ref && sm_labels_check(&s->labels, true, &lerr)) {
            const ts2 *ts = rq->timeseries[from[j]];
            sm_label first;
            rw_reject_series(out, s->n, from[j], first_label(ts, &st, &first), &lerr);
            continue;
        }
        out->samples += s->n;
        out->hints[kept] = out->hints[j];
        out->series[kept++] = *s;
    }
    out->n = kept;
    return 0;
}

/* The encoder's symbols: an open-addressing table of indexes into the
 * symbols array, sized a power of two at least twice the strings. */
typedef struct symset {
    char **v; /* the symbols, "" first */
    size_t n;
    uint32_t *slot; /* index + 1, 0 when free */
    size_t mask;
} symset;

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint32_t sym_ref(symset *t, const char *s) {
    size_t j = str_hash(s) & t->mask;
    for (; t->slot[j]; j = (j + 1) & t->mask)
        if (!strcmp(t->v[t->slot[j] - 1], s)) return t->slot[j] - 1;
    t->v[t->n] = (char *)s;
    t->slot[j] = (uint32_t)++t->n;
    return (uint32_t)(t->n - 1);
}

int rw2_encode(const tsdb_series_in *series, size_t n, sm_buf *out) {
    sm_arena *a = sm_arena_new(0, 0);
    if (!a) return SM_ENOMEM;
    int rc = SM_ENOMEM;
    size_t strings = 1;
    for (size_t i = 0; i < n; i++) strings += 2 * (size_t)series[i].labels.n;
    size_t cap = 16;
    while (cap < 2 * strings) cap *= 2;
    symset t = {sm_arena_alloc(a, strings * sizeof *t.v), 0, sm_arena_calloc(a, cap, sizeof *t.slot), cap - 1};
    Io__Prometheus__Write__V2__TimeSeries **tsv = sm_arena_alloc(a, (n ? n : 1) * sizeof *tsv);
    if (!t.v || !t.slot || !tsv) goto out;
    sym_ref(&t, "");
    for (size_t i = 0; i < n; i++) {
        const tsdb_series_in *s = &series[i];
        Io__Prometheus__Write__V2__TimeSeries *ts = sm_arena_alloc(a, sizeof *ts);
        uint32_t *refs = sm_arena_alloc(a, (2 * (size_t)s->labels.n + 1) * sizeof *refs);
        Io__Prometheus__Write__V2__Sample **sp = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *sp);
        Io__Prometheus__Write__V2__Sample *sv = sm_arena_alloc(a, (s->n ? s->n : 1) * sizeof *sv);
        if (!ts || !refs || !sp || !sv) goto out;
        io__prometheus__write__v2__time_series__init(ts);
        for (uint32_t k = 0; k < s->labels.n; k++) {
            refs[2 * k] = sym_ref(&t, s->labels.v[k].name);
            refs[2 * k + 1] = sym_ref(&t, s->labels.v[k].value);
        }
        for (uint32_t k = 0; k < s->n; k++) {
            io__prometheus__write__v2__sample__init(&sv[k]);
            sv[k].timestamp = s->samples[k].t;
            sv[k].value = s->samples[k].v;
            sp[k] = &sv[k];
        }
        ts->n_labels_refs = 2 * (size_t)s->labels.n;
        ts->labels_refs = refs;
        ts->n_samples = s->n;
        ts->samples = sp;
        tsv[i] = ts;
    }
    Io__Prometheus__Write__V2__Request rq = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    rq.n_symbols = t.n;
    rq.symbols = t.v;
    rq.n_timeseries = n;
    rq.timeseries = tsv;
    size_t plen = io__prometheus__write__v2__request__get_packed_size(&rq);
    uint8_t *pb = sm_arena_alloc(a, plen ? plen : 1);
    if (!pb) goto out;
    io__prometheus__write__v2__request__pack(&rq, pb);
    size_t clen = snappy_max_compressed_length(plen);
    if (sm_buf_reserve(out, clen)) goto out;
    if (snappy_compress((const char *)pb, plen, (char *)out->p + out->len, &clen) != SNAPPY_OK) {
        rc = SM_EINVAL;
        goto out;
    }
    out->len += clen;
    rc = 0;
out:
    sm_arena_free(a);
    return rc;
}
