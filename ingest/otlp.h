/* SPDX-License-Identifier: Apache-2.0
 *
 * otlp.h - OpenTelemetry metrics over OTLP/HTTP in protobuf (`POST
 * /api/v1/otlp/v1/metrics`, the path Prometheus serves them on), turned
 * into Prometheus series the way Prometheus's own OTLP receiver does by
 * default (docs/OTLP.md has the rules and what is left out):
 *
 *   - metric names: characters outside [a-zA-Z0-9:] split the name into
 *     words joined by "_", the unit added as a suffix ("s" -> _seconds,
 *     "By/s" -> _bytes_per_second, annotations in braces dropped), _total
 *     for a monotonic sum and _ratio for a gauge of unit "1";
 *   - labels: each attribute of the data point, its key with every
 *     character outside [a-zA-Z0-9_] made "_" and "key_" before a leading
 *     digit (keys that end up equal are one label, their values joined by
 *     ";" in key order); job from the resource's service.namespace and
 *     service.name ("ns/name"), instance from service.instance.id, and the
 *     resource's other attributes on one target_info series per resource;
 *   - gauges and cumulative sums as one sample per point; cumulative
 *     histograms as _bucket{le}, _sum (when sent) and _count; summaries as
 *     {quantile}, _sum and _count; a point flagged "no recorded value" as
 *     stale markers; times in ms (time_unix_nano / 10^6).
 *
 * Refused points (counted in rejected_points, the first one described in
 * rw.reject, the rest of the request kept): delta or unspecified
 * temporality of a sum or histogram, exponential histograms (native
 * histograms are not stored yet; also in rw.histograms), a histogram whose
 * bucket counts do not fit its bounds, and a series that breaks the label
 * rules or limits of rw_limits.
 */
#ifndef SEISMO_INGEST_OTLP_H
#define SEISMO_INGEST_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "rw.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"

typedef struct otlp_request {
    rw_request rw;            /* the series to append; hints are all 0 */
    uint64_t points;          /* data points in the request */
    uint64_t rejected_points; /* of them, not stored (see above) */
} otlp_request;

/* Decode an ExportMetricsServiceRequest (body: its protobuf bytes, already
 * inflated) into out, allocating from a.  0 (some points may have been
 * refused), SM_ELIMIT when len passes lim->max_decoded_bytes, SM_ECORRUPT
 * for bytes that are not the message (err says so), SM_ENOMEM (also when
 * the decoded structures pass the arena's limit). */
int otlp_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, otlp_request *out,
                sm_error *err);

/* Inflate a gzip body into the arena: *out, *out_len.  SM_ELIMIT as soon
 * as it would pass limit bytes (nothing more is inflated), SM_ECORRUPT for
 * bytes that are not gzip, SM_ENOMEM. */
int otlp_gunzip(const uint8_t *body, size_t len, size_t limit, sm_arena *a, const uint8_t **out, size_t *out_len,
                sm_error *err);

/* The answer bodies, appended to out: an ExportMetricsServiceResponse
 * (with partial_success when rejected > 0 or msg is not NULL), and a
 * google.rpc.Status for an error answer (code: a gRPC code, e.g. 3
 * INVALID_ARGUMENT). */
int otlp_encode_response(uint64_t rejected, const char *msg, sm_buf *out);
int otlp_encode_status(int code, const char *msg, sm_buf *out);

/* The client side, for tests and the benchmark; each appends to out.
 *
 * otlp_encode: series as an ExportMetricsServiceRequest the way an
 * OpenTelemetry Collector forwards a Prometheus scrape: a resource per run
 * of series with one instance label (service.name = job,
 * service.instance.id = instance), a metric per run of one __name__ in it
 * with a data point per sample and the other labels as attributes.  A name
 * ending in _total is sent as a cumulative monotonic sum without the suffix
 * (the receiver adds it back), the rest as gauges, so what is stored is
 * what remote_write would store for names the translation leaves alone.
 * 0 or SM_ENOMEM.
 *
 * otlp_gzip: p[0..n) as one gzip member at zlib's default level (the
 * Collector's default Content-Encoding).  0 or SM_ENOMEM. */
int otlp_encode(const tsdb_series_in *series, size_t n, sm_buf *out);
int otlp_gzip(const void *p, size_t n, sm_buf *out);

#endif
