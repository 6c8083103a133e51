/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_remote_write2.c - the remote_write 2.0 decode path on arbitrary
 * bytes.  Input byte 0 even: the rest is a request body (snappy, then
 * protobuf); odd: the rest is snappy-compressed here first, so the fuzzer
 * reaches the protobuf decoder and the label checks directly.  A decoded
 * request must hold only valid label sets, and agree with a reading of the
 * same bytes written here from rw2.h's rules alone (rw2_against_reference):
 * protobuf-c's unpack of the full schema's Request (symbols as strings),
 * then each series resolved, checked and kept or left out the plain way
 * (rw2_check, which tests/ingest/test_rw2.c also runs on requests it builds
 * itself, without protobuf-c).
 * tests/ingest/test_rw2.c includes this file for that check.
 */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_write_v2.pb-c.h"
#include "rw2.h"
#include "tsdb/labels.h"

static int cmp_name2(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* Whether refs (n) are pairs of indexes below nsym. */
static bool refs_ok(const uint32_t *refs, size_t n, size_t nsym) {
    if (n % 2) return false;
    for (size_t k = 0; k < n; k++)
        if (refs[k] >= nsym) return false;
    return true;
}

/* Whether series ts of rq (symbol lengths slen, from the bytes view) is
 * kept, by rw2.h's rules; its labels (sorted, empty values dropped) into v
 * (room for n_labels_refs / 2) and *n (OUT) when it is. */
static bool ref_keep(const Io__Prometheus__Write__V2__Request *rq, const size_t *slen,
                     const Io__Prometheus__Write__V2__TimeSeries *ts, const rw_limits *limits, sm_label *v,
                     uint32_t *n) {
    size_t ns = rq->n_symbols;
    if (!refs_ok(ts->labels_refs, ts->n_labels_refs, ns)) return false;
    for (size_t e = 0; e < ts->n_exemplars; e++)
        if (!refs_ok(ts->exemplars[e]->labels_refs, ts->exemplars[e]->n_labels_refs, ns)) return false;
    if (ts->metadata && (ts->metadata->help_ref >= ns || ts->metadata->unit_ref >= ns)) return false;
    if (ts->n_labels_refs / 2 > limits->max_labels) return false;
    *n = 0;
    for (size_t k = 0; k < ts->n_labels_refs; k += 2) {
        uint32_t a = ts->labels_refs[k], b = ts->labels_refs[k + 1];
        if (slen[a] > limits->max_label_bytes || slen[b] > limits->max_label_bytes) return false;
        if (strlen(rq->symbols[a]) != slen[a] || strlen(rq->symbols[b]) != slen[b]) return false; /* a NUL */
        if (*rq->symbols[b]) v[(*n)++] = (sm_label){rq->symbols[a], rq->symbols[b]};
    }
    qsort(v, *n, sizeof *v, cmp_name2);
    sm_labels ls = {v, *n};
    return *n && sm_labels_check(&ls, true, NULL) == 0;
}

/* rw2_decode's answer (rc, *r) against the reference reading of the
 * Request rq (NULL: not a protobuf Request), whose symbols have the lengths
 * slen (as sent: a string of rq ends at its first NUL): both refuse the
 * request, or every series with samples is, in request order, kept with the
 * labels the reference gives it and its samples bit for bit (with its
 * labels' hash in its hint), or left out, and the reason names the first
 * series left out; a series with neither samples nor histograms is left
 * out too; the exemplars, histograms and metadata counted are the
 * reference's.  NULL when they agree, else why (in the cap bytes at why). */
static const char *rw2_check(const Io__Prometheus__Write__V2__Request *rq, const size_t *slen,
                             const rw_limits *limits, int rc, const rw_request *r, char *why, size_t cap) {
    /* (the arena's limit: no answer about the bytes; callers pass bodies
     * within the decoded-size limit, so an SM_ELIMIT is the arena's too) */
    if (rc == SM_ENOMEM || rc == SM_ELIMIT) return NULL;
    bool whole = rq && (rq->n_symbols ? slen[0] == 0 : rq->n_timeseries == 0);
    if (!whole || rc) {
        if (whole != (rc == 0) || (!whole && rc != SM_ECORRUPT))
            return snprintf(why, cap, "the reference %s the request, rw2_decode returns %d",
                            whole ? "takes" : "refuses", rc), why;
        return NULL;
    }
    const char *res = NULL;
    size_t kept = 0;
    uint64_t left_out = 0, samples = 0, left_samples = 0, exemplars = 0, histograms = 0, metadata = 0;
    for (size_t i = 0; i < rq->n_timeseries && !res; i++) {
        const Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
        exemplars += ts->n_exemplars;
        histograms += ts->n_histograms;
        metadata += ts->metadata != NULL;
        if (!ts->n_samples && ts->n_histograms) continue;
        sm_label *v = malloc((ts->n_labels_refs / 2 + 1) * sizeof *v);
        if (!v) abort();
        uint32_t m = 0;
        if (ts->n_samples && ref_keep(rq, slen, ts, limits, v, &m)) {
            sm_labels ls = {v, m};
            samples += ts->n_samples;
            if (kept == r->n || !sm_labels_equal(&r->series[kept].labels, &ls) || r->series[kept].n != ts->n_samples)
                res = why, snprintf(why, cap, "series %zu: the reference's labels are not those kept", i);
            else if (r->hints[kept].hash != sm_labels_hash(&ls))
                res = why, snprintf(why, cap, "series %zu: the hint's hash is not that of the labels", i);
            for (size_t k = 0; !res && k < ts->n_samples; k++) {
                const tsdb_sample *got = &r->series[kept].samples[k];
                double want = ts->samples[k]->value;
                uint64_t gb, wb;
                memcpy(&gb, &got->v, 8);
                memcpy(&wb, &want, 8);
                if (got->t != ts->samples[k]->timestamp || gb != wb)
                    res = why, snprintf(why, cap, "series %zu sample %zu: %lld %016llx, rw2_decode %lld %016llx", i,
                                        k, (long long)ts->samples[k]->timestamp, (unsigned long long)wb,
                                        (long long)got->t, (unsigned long long)gb);
            }
            kept++;
        } else {
            left_samples += ts->n_samples;
            if (left_out++ == 0) {
                char head[40];
                size_t hl = (size_t)snprintf(head, sizeof head, "series %zu", i);
                if (r->reject.index != (int64_t)i || strncmp(r->reject.msg, head, hl) != 0 ||
                    (r->reject.msg[hl] != ' ' && r->reject.msg[hl] != ':'))
                    res = why, snprintf(why, cap, "the first series left out is %zu, rw2_decode says \"%.200s\"", i,
                                        r->reject.msg);
            }
        }
        free(v);
    }
    if (!res && (exemplars != r->exemplars || histograms != r->histograms || metadata != r->metadata))
        res = why, snprintf(why, cap, "the reference counts %llu exemplars, %llu histograms, %llu metadata; "
                            "rw2_decode %llu, %llu, %llu", (unsigned long long)exemplars,
                            (unsigned long long)histograms, (unsigned long long)metadata,
                            (unsigned long long)r->exemplars, (unsigned long long)r->histograms,
                            (unsigned long long)r->metadata);
    if (!res && (kept != r->n || left_out != r->rejected_series || samples != r->samples ||
                 left_samples != r->rejected_samples))
        res = why, snprintf(why, cap, "the reference keeps %zu series (%llu samples) and leaves out %llu (%llu); "
                            "rw2_decode %zu (%llu) and %llu (%llu)", kept, (unsigned long long)samples,
                            (unsigned long long)left_out, (unsigned long long)left_samples, r->n,
                            (unsigned long long)r->samples, (unsigned long long)r->rejected_series,
                            (unsigned long long)r->rejected_samples);
    return res;
}

/* rw2_check for the Request bytes pb, read by protobuf-c's unpack of the
 * full schema's Request (the symbols' lengths from the bytes view, which
 * must read pb exactly when Request does). */
static const char *rw2_against_reference(const uint8_t *pb, size_t n, const rw_limits *limits, int rc,
                                         const rw_request *r, char *why, size_t cap) {
    Io__Prometheus__Write__V2__Request *rq = io__prometheus__write__v2__request__unpack(NULL, n, pb);
    Io__Prometheus__Write__V2__RequestView *view = io__prometheus__write__v2__request_view__unpack(NULL, n, pb);
    size_t *slen = NULL;
    const char *res = NULL;
    if (!rq != !view) {
        snprintf(why, cap, "protobuf-c reads the symbols as strings %s, as bytes %s", rq ? "fine" : "not",
                 view ? "fine" : "not");
        res = why;
    } else {
        slen = malloc(((rq ? rq->n_symbols : 0) + 1) * sizeof *slen);
        if (!slen) abort();
        for (size_t k = 0; rq && k < rq->n_symbols; k++) slen[k] = view->symbols[k].len;
        res = rw2_check(rq, slen, limits, rc, r, why, cap);
    }
    free(slen);
    io__prometheus__write__v2__request__free_unpacked(rq, NULL);
    io__prometheus__write__v2__request_view__free_unpacked(view, NULL);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rw_limits limits;
    rw_limits_default(&limits);
    limits.max_decoded_bytes = 1 << 20;
    limits.max_labels = 16; /* (small, so that the fuzzer meets the limits) */
    limits.max_label_bytes = 64;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    uint8_t *body, *own = NULL;
    const uint8_t *pb = NULL; /* the protobuf bytes, when there are any within the limit */
    size_t blen, pblen = 0;
    if (data[0] & 1) {
        blen = snappy_max_compressed_length(len);
        body = malloc(blen ? blen : 1);
        if (!body || snappy_compress((const char *)p, len, (char *)body, &blen) != SNAPPY_OK) {
            free(body);
            return 0;
        }
        pb = p;
        pblen = len;
    } else {
        body = malloc(len ? len : 1);
        if (!body) return 0;
        memcpy(body, p, len);
        blen = len;
        size_t want = 0;
        if (snappy_uncompressed_length((const char *)body, blen, &want) == SNAPPY_OK &&
            want <= limits.max_decoded_bytes && (own = malloc(want ? want : 1)) != NULL) {
            pblen = want;
            if (snappy_uncompress((const char *)body, blen, (char *)own, &pblen) == SNAPPY_OK && pblen == want)
                pb = own;
        }
    }
    sm_arena *a = sm_arena_new(0, 64u << 20);
    rw_request r;
    int rc = rw2_decode(body, blen, &limits, a, &r, NULL);
    if (rc == 0)
        for (size_t i = 0; i < r.n; i++)
            if (sm_labels_check(&r.series[i].labels, true, NULL) != 0) abort();
    char why[512];
    if (pb && pblen <= limits.max_decoded_bytes && rw2_against_reference(pb, pblen, &limits, rc, &r, why, sizeof why)) {
        fprintf(stderr, "fuzz_remote_write2: %s\n", why);
        abort();
    }
    free(own);
    sm_arena_free(a);
    free(body);
    return 0;
}
