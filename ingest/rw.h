/* SPDX-License-Identifier: Apache-2.0
 *
 * rw.h - decoding a Prometheus remote_write 1.0 request body (a snappy
 * block holding a protobuf WriteRequest; ../shared/peer-tests/REMOTE_WRITE.md
 * and docs/FORMAT.md, "remote_write") into series for tsdb_append.
 *
 * Everything is allocated from the caller's arena (protobuf-c's allocator
 * hook points at it), so a request costs a few large allocations, not one
 * per label.  The decoded size is checked against the limit from the snappy
 * preamble before anything is decompressed.
 *
 * Per series: labels are sorted when they arrive unsorted (as Prometheus
 * does), labels with empty values are dropped (an empty value means the
 * label is absent), and a series with a repeated or invalid label name, an
 * invalid metric name, invalid UTF-8, or no labels left is left out of the
 * result and counted, with the first such problem described in `reject`.
 * Native histograms and exemplars are accepted and counted but not stored
 * (README: not supported yet); metadata is counted.
 */
#ifndef SEISMO_INGEST_RW_H
#define SEISMO_INGEST_RW_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/tsdb.h"

typedef struct rw_limits {
    size_t max_decoded_bytes;   /* 413 past this (default 32 MiB) */
    uint32_t max_labels;        /* per series (default 64) */
    uint32_t max_label_bytes;   /* per name or value (default 4096) */
} rw_limits;

void rw_limits_default(rw_limits *l);

/* For a decoder whose allocation from the request's arena a failed: the
 * arena's limit was hit (the request is too large to decode, whenever it is
 * sent: SM_ELIMIT, which the server answers 413, not 503, so that a sender
 * does not retry it for ever, with a message that says to send smaller
 * requests), or the heap said no (SM_ENOMEM, worth a retry).  Requests
 * decode into a few times their bytes, more for 2.0 and OTLP than for 1.0;
 * tests/ingest/test_decode_limits.c measures how many. */
int rw_nomem(const sm_arena *a, sm_error *err);

typedef struct rw_request {
    tsdb_series_in *series; /* valid series, in request order */
    tsdb_series_hint *hints; /* theirs, for tsdb_append_begin */
    size_t n;
    uint64_t samples;           /* in the valid series */
    uint64_t rejected_series;   /* series left out */
    uint64_t rejected_samples;  /* their samples */
    uint64_t histograms;        /* native histogram samples (not stored) */
    uint64_t exemplars;         /* not stored */
    uint64_t metadata;          /* metadata entries (not stored) */
    sm_error reject;            /* the first left-out series, index = its position */
} rw_request;

/* Decode body.  Returns 0 (some series may have been left out: see
 * rejected_series), SM_ELIMIT when the decoded size passes the limit (nothing
 * decompressed), SM_ECORRUPT for invalid snappy or protobuf (err says
 * which), SM_ENOMEM. */
int rw_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
              sm_error *err);
/* rw_decode, asking db (when not NULL) which of the series it has
 * already (tsdb_lookup): those are not checked against the label rules
 * again (their labels passed them when the series was created) and carry
 * their ref in out->hints, so tsdb_append_begin does not look them up a
 * second time.  The result is rw_decode's. */
int rw_decode_for(tsdb *db, const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
                  sm_error *err);

/* Encode series as a remote_write body (for the test client, the benchmark
 * and `seismo import --remote-write`); appends to out. */
int rw_encode(const tsdb_series_in *series, size_t n, sm_buf *out);

/* Shared by the 1.0 and 2.0 decoders.
 *
 * rw_unsnappy: the snappy block body decompressed into the arena (*raw,
 * *dlen).  SM_ECORRUPT, SM_ELIMIT when its preamble says more than
 * lim->max_decoded_bytes (nothing is decompressed then), or rw_nomem's.
 *
 * rw_reject_series: note series i of the request (first: its first label
 * as sent, NULL when it has none) as left out with its n_samples because
 * of lerr.  The one with the lowest index is described, as "series <i>
 * (first label <name>="<value>"): <why>" (the label rules are checked
 * after the other checks, so a later series may have been described
 * first). */
int rw_unsnappy(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, const char **raw,
                size_t *dlen, sm_error *err);
void rw_reject_series(rw_request *out, size_t n_samples, size_t i, const sm_label *first, const sm_error *lerr);

#endif
