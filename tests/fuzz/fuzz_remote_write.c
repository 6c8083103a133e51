/* SPDX-License-Identifier: Apache-2.0
 *
 * fuzz_remote_write.c - the remote_write decode path on arbitrary bytes.
 * Input byte 0 even: the rest is a request body (snappy, then protobuf);
 * odd: the rest is snappy-compressed here first, so the fuzzer reaches the
 * protobuf decoder and the label checks directly.  A decoded request must
 * hold only valid label sets, and agree with protobuf-c's own unpack of the
 * same bytes under the full schema, remote_write.proto
 * (rw_against_protobuf_c): however rw_decode reads the Labels and Samples,
 * it must refuse and accept exactly what protobuf-c does, and find the same
 * labels and the same samples, bit for bit.
 * tests/ingest/test_rw.c includes this file for that check.
 */
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_write.pb-c.h"
#include "rw.h"
#include "tsdb/labels.h"

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const sm_label *)a)->name, ((const sm_label *)b)->name);
}

/* rw_decode's answer (rc, *r) for the WriteRequest bytes pb, decoded with
 * the limits given, against protobuf-c's unpack of pb with remote_write.proto:
 * both refuse pb, or every series with samples is, in request order, kept
 * with the labels protobuf-c gives it (empty values dropped, sorted) and its
 * samples bit for bit, or left out because those labels break a limit or a
 * rule, and the reason names the first series left out and its first label
 * as protobuf-c has it; a kept series' hint carries its labels' hash; the
 * exemplars, histograms and metadata counted are protobuf-c's.
 * NULL when they agree, else why (what differs, in the cap bytes at why). */
static const char *rw_against_protobuf_c(const uint8_t *pb, size_t n, const rw_limits *limits, int rc,
                                         const rw_request *r, char *why, size_t cap) {
    Prometheus__WriteRequest *full = prometheus__write_request__unpack(NULL, n, pb);
    const char *res = NULL;
    /* The arena's limit (SM_ELIMIT, rw_nomem) or the heap's: no answer about
     * the bytes.  (Callers pass bytes within the decoded-size limit, so an
     * SM_ELIMIT is the arena's.) */
    if (rc == SM_ENOMEM || rc == SM_ELIMIT) goto out;
    if (!full || rc) {
        if (!full != (rc == SM_ECORRUPT)) {
            snprintf(why, cap, "protobuf-c %s the request, rw_decode returns %d", full ? "decodes" : "refuses", rc);
            res = why;
        }
        goto out;
    }
    size_t kept = 0;
    uint64_t left_out = 0;
    for (size_t i = 0; i < full->n_timeseries && !res; i++) {
        const Prometheus__TimeSeries *ts = full->timeseries[i];
        if (!ts->n_samples) continue;
        sm_label *v = malloc((ts->n_labels ? ts->n_labels : 1) * sizeof *v);
        if (!v) abort();
        bool keep = ts->n_labels <= limits->max_labels;
        uint32_t m = 0;
        for (size_t k = 0; k < ts->n_labels; k++) {
            const char *name = ts->labels[k]->name, *value = ts->labels[k]->value;
            if (strlen(name) > limits->max_label_bytes || strlen(value) > limits->max_label_bytes) keep = false;
            if (*value) v[m++] = (sm_label){name, value};
        }
        qsort(v, m, sizeof *v, cmp_name);
        sm_labels ls = {v, m};
        if (keep && m && sm_labels_check(&ls, true, NULL) == 0) {
            if (kept == r->n || !sm_labels_equal(&r->series[kept].labels, &ls) || r->series[kept].n != ts->n_samples)
                res = why, snprintf(why, cap, "series %zu: protobuf-c's labels are not those kept", i);
            else if (r->hints[kept].hash != sm_labels_hash(&ls))
                res = why, snprintf(why, cap, "series %zu: the hint's hash is not that of the labels", i);
            for (size_t k = 0; !res && k < ts->n_samples; k++) {
                const tsdb_sample *got = &r->series[kept].samples[k];
                uint64_t gb, wb;
                double want = ts->samples[k]->value;
                memcpy(&gb, &got->v, 8);
                memcpy(&wb, &want, 8);
                if (got->t != ts->samples[k]->timestamp || gb != wb)
                    res = why, snprintf(why, cap, "series %zu sample %zu: protobuf-c has %lld %016llx, rw_decode %lld %016llx",
                                        i, k, (long long)ts->samples[k]->timestamp, (unsigned long long)wb,
                                        (long long)got->t, (unsigned long long)gb);
            }
            kept++;
        } else if (left_out++ == 0) {
            char head[200];
            if (ts->n_labels)
                snprintf(head, sizeof head, "series %zu (first label %.60s=\"%.60s\"): ", i, ts->labels[0]->name,
                         ts->labels[0]->value);
            else
                snprintf(head, sizeof head, "series %zu: ", i);
            if (strncmp(r->reject.msg, head, strlen(head)) != 0)
                res = why, snprintf(why, cap, "the first series left out is \"%s\", rw_decode says \"%.200s\"", head,
                                    r->reject.msg);
        }
        free(v);
    }
    uint64_t exemplars = 0, histograms = 0;
    for (size_t i = 0; i < full->n_timeseries; i++) {
        exemplars += full->timeseries[i]->n_exemplars;
        histograms += full->timeseries[i]->n_histograms;
    }
    if (!res && (exemplars != r->exemplars || histograms != r->histograms || full->n_metadata != r->metadata))
        res = why, snprintf(why, cap, "protobuf-c counts %llu exemplars, %llu histograms, %zu metadata; rw_decode "
                            "%llu, %llu, %llu", (unsigned long long)exemplars, (unsigned long long)histograms,
                            full->n_metadata, (unsigned long long)r->exemplars, (unsigned long long)r->histograms,
                            (unsigned long long)r->metadata);
    if (!res && (kept != r->n || left_out != r->rejected_series))
        res = why, snprintf(why, cap, "protobuf-c's labels keep %zu series and leave out %llu; rw_decode %zu and %llu",
                            kept, (unsigned long long)left_out, r->n, (unsigned long long)r->rejected_series);
out:
    prometheus__write_request__free_unpacked(full, NULL);
    return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rw_limits limits;
    rw_limits_default(&limits);
    limits.max_decoded_bytes = 1 << 20;
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
        if (snappy_uncompressed_length((const char *)body, blen, &want) == SNAPPY_OK && want <= limits.max_decoded_bytes &&
            (own = malloc(want ? want : 1)) != NULL) {
            pblen = want;
            if (snappy_uncompress((const char *)body, blen, (char *)own, &pblen) == SNAPPY_OK && pblen == want) pb = own;
        }
    }
    sm_arena *a = sm_arena_new(0, 64u << 20);
    rw_request r;
    int rc = rw_decode(body, blen, &limits, a, &r, NULL);
    if (rc == 0)
        for (size_t i = 0; i < r.n; i++)
            if (sm_labels_check(&r.series[i].labels, true, NULL) != 0) abort();
    char why[512];
    if (pb && pblen <= limits.max_decoded_bytes && rw_against_protobuf_c(pb, pblen, &limits, rc, &r, why, sizeof why)) {
        fprintf(stderr, "fuzz_remote_write: %s\n", why);
        abort();
    }
    free(own);
    sm_arena_free(a);
    free(body);
    return 0;
}
