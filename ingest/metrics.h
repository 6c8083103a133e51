/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.h - the server's own metrics, served at /metrics in the
 * Prometheus text format 0.0.4: remote_write requests and samples received
 * and rejected by reason, the WAL's fsync latency histogram, the head and
 * the blocks, process memory from the allocator.  Counters are atomics
 * updated by the handlers.
 */
#ifndef SEISMO_INGEST_METRICS_H
#define SEISMO_INGEST_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "tsdb/base/sm_buf.h"
#include "tsdb/tsdb.h"

/* Why samples were refused (the `reason` label). */
typedef enum {
    REJ_INVALID_LABELS = 0, /* series with invalid, repeated or empty labels */
    REJ_TOO_OLD,            /* outside the out-of-order window or below a cut */
    REJ_SERIES_LIMIT,       /* new series past the head's limit */
    REJ_UNSUPPORTED,        /* native histograms (not stored yet) */
    REJ_OVERLOADED,         /* WAL backlog full (503) */
    REJ_INTERNAL,           /* write errors (500) */
    REJ_COUNT
} reject_reason;

typedef struct ingest_metrics {
    _Atomic uint64_t requests[6];  /* by status class: 2xx, 400, 413, 415, 429/503, 5xx */
    /* Requests whose Content-Type was accepted, by the message it named:
     * [0] remote_write 1.0 (prometheus.WriteRequest), [1] 2.0
     * (io.prometheus.write.v2.Request).  Samples are counted by reason
     * alike for both. */
    _Atomic uint64_t requests_by_protocol[2];
    _Atomic uint64_t samples_received;
    _Atomic uint64_t samples_stored;
    _Atomic uint64_t samples_duplicate;
    _Atomic uint64_t samples_replaced;
    _Atomic uint64_t samples_rejected[REJ_COUNT];
    _Atomic uint64_t series_created;
    _Atomic uint64_t metadata_received;
    _Atomic uint64_t exemplars_dropped;
    _Atomic uint64_t bytes_received;
    /* OTLP/HTTP metrics (POST /api/v1/otlp/v1/metrics): requests by status
     * class as above, body bytes as sent, data points read and refused by
     * the OTLP rules (otlp.h); their samples count in samples_* with
     * remote_write's. */
    _Atomic uint64_t otlp_requests[6];
    _Atomic uint64_t otlp_bytes_received;
    _Atomic uint64_t otlp_points_received;
    _Atomic uint64_t otlp_points_rejected;
    int64_t start_ms;
} ingest_metrics;

void metrics_count_status(ingest_metrics *m, unsigned status);
void metrics_count_otlp_status(ingest_metrics *m, unsigned status);

/* The whole exposition (db may be NULL before it is open). */
int metrics_render(const ingest_metrics *m, tsdb *db, bool ready, sm_buf *out);

#endif
