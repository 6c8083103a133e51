/* SPDX-License-Identifier: Apache-2.0
 *
 * metrics.c - /metrics in the Prometheus text format (see metrics.h).
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tsdb/base/sm_alloc.h"
#include "tsdb/base/sm_time.h"

static const char *reason_names[REJ_COUNT] = {"invalid_labels", "too_old",    "series_limit",
                                              "unsupported",    "overloaded", "internal"};
static const char *status_names[6] = {"2xx", "400", "413", "415", "503", "5xx"};

/* The status class a request is counted under (status_names). */
static int status_class(unsigned status) {
    return status < 300 ? 0 : status == 400 ? 1 : status == 413 ? 2 : status == 415 ? 3
           : (status == 429 || status == 503) ? 4 : 5;
}

void metrics_count_status(ingest_metrics *m, unsigned status) { atomic_fetch_add(&m->requests[status_class(status)], 1); }

void metrics_count_otlp_status(ingest_metrics *m, unsigned status) {
    atomic_fetch_add(&m->otlp_requests[status_class(status)], 1);
}

static int put(sm_buf *b, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return SM_EINVAL;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    return sm_buf_append(b, line, (size_t)n);
}

static int family(sm_buf *b, const char *name, const char *type, const char *help) {
    return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned long long ld(const _Atomic uint64_t *v) { return (unsigned long long)atomic_load(v); }

int metrics_render(const ingest_metrics *m, tsdb *db, bool ready, sm_buf *out) {
    int rc = 0;
    rc |= family(out, "seismo_build_info", "gauge", "Seismo build information.");
    rc |= put(out, "seismo_build_info{version=\"%s\"} 1\n", SEISMO_VERSION);
    rc |= family(out, "seismo_ready", "gauge", "1 once the WAL has been replayed and the server takes writes.");
    rc |= put(out, "seismo_ready %d\n", ready ? 1 : 0);
    rc |= family(out, "seismo_start_time_seconds", "gauge", "Start time of the process since the epoch.");
    rc |= put(out, "seismo_start_time_seconds %.3f\n", (double)m->start_ms / 1000);

    rc |= family(out, "seismo_remote_write_requests_total", "counter",
                 "remote_write requests answered, by status.");
    for (int i = 0; i < 6; i++)
        rc |= put(out, "seismo_remote_write_requests_total{status=\"%s\"} %llu\n", status_names[i], ld(&m->requests[i]));
    rc |= family(out, "seismo_remote_write_protocol_requests_total", "counter",
                 "remote_write requests whose Content-Type was accepted, by protocol version.");
    rc |= put(out, "seismo_remote_write_protocol_requests_total{protocol=\"1.0\"} %llu\n",
              ld(&m->requests_by_protocol[0]));
    rc |= put(out, "seismo_remote_write_protocol_requests_total{protocol=\"2.0\"} %llu\n",
              ld(&m->requests_by_protocol[1]));
    rc |= family(out, "seismo_remote_write_bytes_received_total", "counter", "Compressed remote_write body bytes.");
    rc |= put(out, "seismo_remote_write_bytes_received_total %llu\n", ld(&m->bytes_received));
    rc |= family(out, "seismo_otlp_requests_total", "counter", "OTLP/HTTP metrics requests answered, by status.");
    for (int i = 0; i < 6; i++)
        rc |= put(out, "seismo_otlp_requests_total{status=\"%s\"} %llu\n", status_names[i], ld(&m->otlp_requests[i]));
    rc |= family(out, "seismo_otlp_bytes_received_total", "counter", "OTLP/HTTP body bytes, as sent (gzip or not).");
    rc |= put(out, "seismo_otlp_bytes_received_total %llu\n", ld(&m->otlp_bytes_received));
    rc |= family(out, "seismo_otlp_data_points_received_total", "counter", "OTLP data points read.");
    rc |= put(out, "seismo_otlp_data_points_received_total %llu\n", ld(&m->otlp_points_received));
    rc |= family(out, "seismo_otlp_data_points_rejected_total", "counter",
                 "OTLP data points refused by the translation rules (delta temporality, exponential histograms, "
                 "bad buckets, label rules).");
    rc |= put(out, "seismo_otlp_data_points_rejected_total %llu\n", ld(&m->otlp_points_rejected));
    rc |= family(out, "seismo_samples_received_total", "counter", "Samples received through remote_write and OTLP.");
    rc |= put(out, "seismo_samples_received_total %llu\n", ld(&m->samples_received));
    rc |= family(out, "seismo_samples_stored_total", "counter",
                 "Samples acknowledged (durable), including identical duplicates.");
    rc |= put(out, "seismo_samples_stored_total %llu\n", ld(&m->samples_stored));
    rc |= family(out, "seismo_samples_duplicate_total", "counter", "Samples identical to one already stored (no-op).");
    rc |= put(out, "seismo_samples_duplicate_total %llu\n", ld(&m->samples_duplicate));
    rc |= family(out, "seismo_samples_replaced_total", "counter",
                 "Samples that replaced a different value at the same timestamp.");
    rc |= put(out, "seismo_samples_replaced_total %llu\n", ld(&m->samples_replaced));
    rc |= family(out, "seismo_samples_rejected_total", "counter", "Samples refused, by reason.");
    for (int i = 0; i < REJ_COUNT; i++)
        rc |= put(out, "seismo_samples_rejected_total{reason=\"%s\"} %llu\n", reason_names[i],
                  ld(&m->samples_rejected[i]));
    rc |= family(out, "seismo_metadata_received_total", "counter", "Metric metadata entries received (not stored).");
    rc |= put(out, "seismo_metadata_received_total %llu\n", ld(&m->metadata_received));
    rc |= family(out, "seismo_exemplars_dropped_total", "counter", "Exemplars received and not stored.");
    rc |= put(out, "seismo_exemplars_dropped_total %llu\n", ld(&m->exemplars_dropped));

    if (db) {
        tsdb_stats st;
        tsdb_get_stats(db, &st);
        rc |= family(out, "seismo_head_series", "gauge", "Series in the head.");
        rc |= put(out, "seismo_head_series %llu\n", (unsigned long long)st.head_series);
        rc |= family(out, "seismo_head_chunks", "gauge", "Chunks in the head.");
        rc |= put(out, "seismo_head_chunks %llu\n", (unsigned long long)st.head_chunks);
        rc |= family(out, "seismo_head_samples", "gauge", "Samples in the head.");
        rc |= put(out, "seismo_head_samples %llu\n", (unsigned long long)st.head_samples);
        rc |= family(out, "seismo_head_bytes", "gauge", "Memory held by the head.");
        rc |= put(out, "seismo_head_bytes %llu\n", (unsigned long long)st.head_bytes);
        rc |= family(out, "seismo_blocks", "gauge", "Blocks on disk.");
        rc |= put(out, "seismo_blocks %llu\n", (unsigned long long)st.blocks);
        rc |= family(out, "seismo_blocks_bytes", "gauge", "Bytes of all blocks on disk.");
        rc |= put(out, "seismo_blocks_bytes %llu\n", (unsigned long long)st.block_bytes);
        rc |= family(out, "seismo_compactions_total", "counter", "Block compactions.");
        rc |= put(out, "seismo_compactions_total %llu\n", (unsigned long long)st.compactions);
        rc |= family(out, "seismo_retention_deletions_total", "counter", "Blocks deleted by retention.");
        rc |= put(out, "seismo_retention_deletions_total %llu\n", (unsigned long long)st.retention_deletions);
        rc |= family(out, "seismo_wal_segments", "gauge", "WAL segment files.");
        rc |= put(out, "seismo_wal_segments %llu\n", (unsigned long long)st.wal.segments);
        rc |= family(out, "seismo_wal_bytes", "gauge", "Bytes of the WAL on disk.");
        rc |= put(out, "seismo_wal_bytes %llu\n", (unsigned long long)st.wal.bytes_on_disk);
        rc |= family(out, "seismo_wal_records_written_total", "counter", "WAL records written.");
        rc |= put(out, "seismo_wal_records_written_total %llu\n", (unsigned long long)st.wal.records_written);
        rc |= family(out, "seismo_wal_truncations_total", "counter", "Torn or corrupt WAL tails cut at start.");
        rc |= put(out, "seismo_wal_truncations_total %llu\n", (unsigned long long)st.wal.replay_truncations);
        rc |= family(out, "seismo_wal_fsync_duration_seconds", "histogram", "WAL fsync latency.");
        for (int i = 0; i < WAL_FSYNC_BUCKETS; i++) {
            if (i == WAL_FSYNC_BUCKETS - 1)
                rc |= put(out, "seismo_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)st.wal.fsync_buckets[i]);
            else
                rc |= put(out, "seismo_wal_fsync_duration_seconds_bucket{le=\"%g\"} %llu\n",
                          wal_fsync_bucket_bounds_s[i], (unsigned long long)st.wal.fsync_buckets[i]);
        }
        rc |= put(out, "seismo_wal_fsync_duration_seconds_sum %.9f\n", st.wal.fsync_seconds_sum);
        rc |= put(out, "seismo_wal_fsync_duration_seconds_count %llu\n", (unsigned long long)st.wal.fsyncs);
    }
    sm_alloc_stats as;
    sm_alloc_get_stats(&as);
    rc |= family(out, "seismo_memory_allocated_bytes", "gauge", "Bytes allocated by the application (allocator stats).");
    rc |= put(out, "seismo_memory_allocated_bytes{allocator=\"%s\"} %llu\n", sm_alloc_name(),
              (unsigned long long)as.allocated_bytes);
    rc |= family(out, "seismo_memory_resident_bytes", "gauge", "Resident bytes held by the allocator.");
    rc |= put(out, "seismo_memory_resident_bytes{allocator=\"%s\"} %llu\n", sm_alloc_name(),
              (unsigned long long)as.resident_bytes);
    /* Process RSS from /proc (whatever the allocator). */
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long pages_total, pages_res;
        if (fscanf(f, "%llu %llu", &pages_total, &pages_res) == 2) {
            rc |= family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            rc |= put(out, "process_resident_memory_bytes %llu\n", pages_res * (unsigned long long)sysconf(_SC_PAGESIZE));
        }
        fclose(f);
    }
    return rc ? SM_ENOMEM : 0;
}
