/* SPDX-License-Identifier: Apache-2.0
 *
 * wal.h - the write-ahead log: every appended batch is written with a CRC
 * before it is acknowledged.  Byte format: docs/FORMAT.md, "WAL".
 *
 * Records are opaque to the log except for the two payload kinds it must
 * understand to checkpoint (series and samples, encoders below).  Appenders
 * copy records into the log's buffer and get a log sequence number (LSN); a
 * single writer thread writes the buffer through io_uring and fsyncs it
 * (group commit); wal_wait(lsn) returns once that record is durable as the
 * sync mode defines:
 *   WAL_SYNC_BATCH     fsynced (default; ack after fsync)
 *   WAL_SYNC_INTERVAL  written to the OS; an fsync runs every interval_ms
 *   WAL_SYNC_NONE      written to the OS; fsync only at segment end / close
 *
 * Replay reads the checkpoint, then the segments in order; a torn or corrupt
 * record ends replay there: the segment is truncated at the last good
 * record, later segments are removed, and one log line says so.  It never
 * refuses to start.
 *
 * Thread safety: wal_append/wal_wait/wal_stats from any thread; replay,
 * checkpoint and close are not concurrent with each other.
 */
#ifndef SEISMO_TSDB_WAL_H
#define SEISMO_TSDB_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_buf.h"
#include "base/sm_error.h"
#include "base/sm_types.h"
#include "labels.h"

typedef enum { WAL_SYNC_BATCH = 0, WAL_SYNC_INTERVAL, WAL_SYNC_NONE } wal_sync_mode;

/* Record types: frozen on-disk numbers. */
enum { WAL_REC_SERIES = 1, WAL_REC_SAMPLES = 2 };

typedef struct wal_opts {
    wal_sync_mode sync;
    int64_t interval_ms;        /* WAL_SYNC_INTERVAL period (default 1000) */
    uint64_t segment_bytes;     /* roll to a new segment past this (default 128 MiB) */
    uint64_t max_pending_bytes; /* appends beyond this many unwritten bytes get
                                   SM_EAGAIN (backpressure; default 256 MiB) */
} wal_opts;

void wal_opts_default(wal_opts *o);

typedef struct wal wal;

/* Open (creating) the log in dir.  Does not replay. */
int wal_open(const char *dir, const wal_opts *o, wal **out, sm_error *err);
/* Sync everything appended, stop the writer, free.  NULL is fine. */
int wal_close(wal *w, sm_error *err);

typedef int (*wal_replay_fn)(void *ctx, uint8_t type, const uint8_t *payload, size_t len);
/* Call fn for every valid record in log order.  Must run before the first
 * append.  A nonzero return from fn stops replay and is returned. */
int wal_replay(wal *w, wal_replay_fn fn, void *ctx, sm_error *err);

typedef struct wal_rec {
    uint8_t type;
    const void *payload;
    size_t len;
} wal_rec;

/* Append records (copied) in one go; *lsn is the LSN that covers all of
 * them.  SM_EAGAIN under backpressure (nothing appended), SM_EIO after a
 * write failure, SM_ECLOSED after close. */
int wal_append(wal *w, const wal_rec *recs, size_t n, uint64_t *lsn, sm_error *err);
/* Block until lsn is durable per the sync mode. */
int wal_wait(wal *w, uint64_t lsn, sm_error *err);

/* Checkpoint: close the current segment, rewrite every closed segment (and
 * the previous checkpoint) into a new checkpoint that keeps the series
 * records for which keep_series(ctx, ref) is true and those series' samples with
 * t >= mint, then delete what it replaces.  Appends may continue meanwhile
 * into the new segment. */
typedef bool (*wal_keep_series_fn)(void *ctx, uint64_t ref);
int wal_checkpoint(wal *w, sm_ms_t mint, wal_keep_series_fn keep_series, void *ctx,
                   sm_error *err);

#define WAL_FSYNC_BUCKETS 12
/* Upper bounds in seconds of the fsync latency histogram buckets; the last
 * one is +Inf. */
extern const double wal_fsync_bucket_bounds_s[WAL_FSYNC_BUCKETS];

typedef struct wal_stats {
    uint64_t segments;
    uint64_t bytes_on_disk;
    uint64_t records_written;
    uint64_t bytes_written;
    uint64_t fsyncs;
    uint64_t fsync_buckets[WAL_FSYNC_BUCKETS]; /* cumulative counts per bound */
    double fsync_seconds_sum;
    uint64_t replay_truncations; /* torn/corrupt tails cut since open */
} wal_stats;
void wal_get_stats(wal *w, wal_stats *out);

/* ---- Payload codecs (docs/FORMAT.md, "WAL payloads") ---- */

typedef struct wal_sample {
    uint64_t ref; /* series reference, as logged in a series record */
    sm_ms_t t;
    double v;
} wal_sample;

/* Append one series entry (ref, labels) to a SERIES payload being built. */
int wal_enc_series(sm_buf *b, uint64_t ref, const sm_labels *ls);
/* Encode n samples as one SAMPLES payload (appending to b). */
int wal_enc_samples(sm_buf *b, const wal_sample *s, size_t n);
/* The same payload from runs of samples that share a series (the order
 * and bytes are those of wal_enc_samples over the runs one after another),
 * without building a wal_sample per sample first. */
typedef struct wal_run {
    uint64_t ref;
    const sm_ms_t *t;
    const double *v;
    uint32_t n;
} wal_run;
int wal_enc_sample_runs(sm_buf *b, const wal_run *runs, size_t nruns);

/* Decode a SERIES payload: fn(ctx, ref, labels) per entry; label strings
 * live in the arena.  SM_ECORRUPT on malformed input. */
typedef int (*wal_series_fn)(void *ctx, uint64_t ref, const sm_labels *ls);
int wal_dec_series(const uint8_t *p, size_t len, sm_arena *a, wal_series_fn fn, void *ctx);
/* Decode a SAMPLES payload: fn(ctx, samples, n) in batches. */
typedef int (*wal_samples_fn)(void *ctx, const wal_sample *s, size_t n);
int wal_dec_samples(const uint8_t *p, size_t len, wal_samples_fn fn, void *ctx);

#endif
