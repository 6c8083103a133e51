/* SPDX-License-Identifier: Apache-2.0
 *
 * rw.c - remote_write request bodies: snappy block, then protobuf-c with an
 * arena allocator, then label checks per series (see rw.h).
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
    l->known = NULL;
    l->known_ctx = NULL;
}

/* protobuf-c allocates every message, string and array through this. */
static void *arena_alloc(void *data, size_t n) { return sm_arena_alloc(data, n ? n : 1); }
static void arena_free(void *data, void *p) {
    (void)data;
    (void)p; /* freed with the arena */
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* Labels of one series into ls (arena); 0 or SM_EINVAL with err set. */
static int series_labels(const Prometheus__TimeSeries *ts, const rw_limits *lim, sm_arena *a,
                         sm_labels *ls, sm_error *err) {
    if (ts->n_labels > lim->max_labels)
        return SM_ERR(err, SM_EINVAL, "%zu labels, more than the limit of %u", ts->n_labels, lim->max_labels);
    sm_label *v = sm_arena_alloc(a, (ts->n_labels ? ts->n_labels : 1) * sizeof *v);
    if (!v) return SM_ERR(err, SM_ENOMEM, "out of memory");
    uint32_t n = 0;
    bool sorted = true;
    for (size_t i = 0; i < ts->n_labels; i++) {
        const char *name = ts->labels[i]->name, *value = ts->labels[i]->value;
        if (!name) name = "";
        if (!value) value = "";
        if (strlen(name) > lim->max_label_bytes || strlen(value) > lim->max_label_bytes)
            return SM_ERR(err, SM_EINVAL, "label %.64s is longer than %u bytes", name, lim->max_label_bytes);
        v[n] = (sm_label){name, value};
        if (n && strcmp(v[n - 1].name, name) > 0) sorted = false;
        n++;
    }
    if (!sorted) qsort(v, n, sizeof *v, cmp_label);
    n = sm_labels_drop_empty(v, n);
    *ls = (sm_labels){v, n};
    if (n == 0) return SM_ERR(err, SM_EINVAL, "empty label set");
    if (lim->known && lim->known(lim->known_ctx, ls)) return 0;
    return sm_labels_check(ls, true, err);
}

int rw_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
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
    ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
    Prometheus__WriteRequest *wr = prometheus__write_request__unpack(&alloc, dlen, (const uint8_t *)raw);
    if (!wr) {
        if (sm_arena_limit_hit(a)) return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
        return SM_ERR(err, SM_ECORRUPT, "invalid protobuf WriteRequest (%zu bytes after snappy)", dlen);
    }
    out->metadata = wr->n_metadata;
    out->series = sm_arena_alloc(a, (wr->n_timeseries ? wr->n_timeseries : 1) * sizeof *out->series);
    if (!out->series) return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[i];
        out->histograms += ts->n_histograms;
        out->exemplars += ts->n_exemplars;
        if (ts->n_samples == 0) continue;
        sm_labels ls;
        sm_error lerr = {0};
        int rc = series_labels(ts, lim, a, &ls, &lerr);
        if (rc == SM_ENOMEM) return SM_ERR(err, rc, "out of memory decoding the request");
        if (rc) {
            out->rejected_series++;
            out->rejected_samples += ts->n_samples;
            if (!out->reject.code) {
                char first[160] = "";
                if (ts->n_labels) {
                    snprintf(first, sizeof first, " (first label %.60s=\"%.60s\")",
                             ts->labels[0]->name ? ts->labels[0]->name : "",
                             ts->labels[0]->value ? ts->labels[0]->value : "");
                }
                SM_ERR(&out->reject, SM_EINVAL, "series %zu%s: %s", i, first, lerr.msg);
                out->reject.index = (int64_t)i;
            }
            continue;
        }
        tsdb_sample *s = sm_arena_alloc(a, ts->n_samples * sizeof *s);
        if (!s) return SM_ERR(err, SM_ENOMEM, "out of memory decoding the request");
        for (size_t k = 0; k < ts->n_samples; k++)
            s[k] = (tsdb_sample){ts->samples[k]->timestamp, ts->samples[k]->value};
        out->series[out->n++] = (tsdb_series_in){ls, s, (uint32_t)ts->n_samples};
        out->samples += ts->n_samples;
    }
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
