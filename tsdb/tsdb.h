/* SPDX-License-Identifier: Apache-2.0
 *
 * tsdb.h - the Seismo storage engine's public API: what ingest and query
 * call.  See tsdb/README.md for the design (head, WAL, blocks, compaction).
 *
 *   tsdb_open      open or create a data directory; replays the WAL
 *   tsdb_append    append a batch of series with samples; returns once the
 *                  batch is durable per the WAL sync mode
 *   tsdb_select    series matching label matchers with samples in a range,
 *                  read through sample iterators that stream chunk by chunk
 *   tsdb_label_names / tsdb_label_values
 *   tsdb_flush     cut the whole head into blocks, durable on return
 *   tsdb_close
 *
 * Sample semantics: samples for a series may arrive out of order within
 * ooo_window_ms of the newest sample in the head and are merged; an
 * identical duplicate (same timestamp, same value bits) is a no-op; a
 * different value at an existing timestamp replaces the old one (the newest
 * write wins, also across head and blocks).
 *
 * Thread safety: every function may be called from any thread concurrently,
 * except tsdb_close.
 */
#ifndef SEISMO_TSDB_TSDB_H
#define SEISMO_TSDB_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_error.h"
#include "base/sm_types.h"
#include "labels.h"
#include "matcher.h"
#include "wal.h"

typedef struct tsdb tsdb;

typedef struct tsdb_opts {
    wal_sync_mode wal_sync;        /* default WAL_SYNC_BATCH */
    int64_t wal_sync_interval_ms;  /* default 1000 */
    uint64_t wal_segment_bytes;    /* default 128 MiB */
    uint64_t wal_max_pending_bytes;/* backpressure threshold, default 256 MiB */
    int64_t ooo_window_ms;         /* default 1 h */
    int64_t block_range_ms;        /* default 2 h */
    int64_t retention_ms;          /* default 15 d; 0 = forever */
    uint64_t retention_bytes;      /* default 0 = no size limit */
    uint32_t chunk_max_samples;    /* default 120 */
    uint64_t max_series;           /* head series limit, 0 = none */
    bool background;               /* run the compaction thread (default true) */
    int64_t background_interval_ms;/* how often it runs (default 30 s) */
} tsdb_opts;

void tsdb_opts_default(tsdb_opts *o);

/* Open dir (created if missing), load blocks, replay the WAL.  Returns only
 * when the database is ready for appends and queries. */
int tsdb_open(const char *dir, const tsdb_opts *o, tsdb **out, sm_error *err);
/* Stop background work, sync the WAL, free.  NULL is fine. */
int tsdb_close(tsdb *db, sm_error *err);

/* ---- Appending ---- */

typedef struct tsdb_sample {
    sm_ms_t t;
    double v;
} tsdb_sample;

typedef struct tsdb_series_in {
    sm_labels labels;           /* sorted, validated by tsdb_append */
    const tsdb_sample *samples; /* any order */
    uint32_t n;
} tsdb_series_in;

/* What a caller may know about a series of a batch before appending it. */
typedef struct tsdb_series_hint {
    uint64_t hash; /* sm_labels_hash of its labels, or 0: not known */
    uint64_t ref;  /* 0, or the ref tsdb_lookup gave for its labels */
} tsdb_series_hint;

typedef struct tsdb_append_result {
    uint64_t accepted;         /* samples stored, including no-op duplicates */
    uint64_t duplicates;       /* identical samples that were already there */
    uint64_t replaced;         /* samples that replaced a different value */
    uint64_t rejected_invalid; /* samples of series with invalid labels */
    uint64_t rejected_too_old; /* samples outside the out-of-order window */
    uint64_t rejected_limit;   /* samples of new series past max_series */
    uint64_t series_created;
} tsdb_append_result;

/* Append a batch.  Valid samples are stored even when others are rejected
 * (as Prometheus does); *res counts both.  Returns:
 *   0           every sample accepted;
 *   SM_EINVAL / SM_ERANGE / SM_ELIMIT
 *               some were rejected: err describes the first (err->index is
 *               the series index in the batch), the rest were stored and are
 *               durable;
 *   SM_EAGAIN   the WAL is behind: nothing was stored, retry later;
 *   SM_EIO, SM_ENOMEM, SM_ECLOSED
 *               nothing of the batch is acknowledged.
 * Returns after the stored samples are durable per the WAL sync mode. */
int tsdb_append(tsdb *db, const tsdb_series_in *series, size_t n, tsdb_append_result *res,
                sm_error *err);

/* tsdb_append in two halves, so that a caller can release the batch's
 * memory while it waits for durability (the remote_write handler returns
 * its decoding arena to the pool).  tsdb_append_begin stores and logs the
 * batch and returns without waiting: *lsn (OUT) is what to wait for (0:
 * nothing to wait for).  Its return value is tsdb_append's, except that
 * the stored samples are not durable yet.  series may be freed after it
 * returns.  tsdb_append_wait(db, lsn, err) returns 0 once they are
 * durable per the WAL sync mode, or SM_EIO / SM_ECLOSED, after which
 * nothing of the batch is acknowledged; it writes err only then, so a
 * partial rejection's message from the begin survives a good wait.  lsn 0
 * returns 0 at once.  hints (NULL: none) are tsdb_lookup's for series. */
int tsdb_append_begin(tsdb *db, const tsdb_series_in *series, size_t n, const tsdb_series_hint *hints,
                      tsdb_append_result *res, uint64_t *lsn, sm_error *err);
int tsdb_append_wait(tsdb *db, uint64_t lsn, sm_error *err);

/* Which series of a batch the head has already: hints[i].ref (OUT) is
 * series i's ref, or 0; hints[i].hash (IN/OUT) its labels' hash (computed
 * when 0).  No check, no creation; one index lock for the batch.  The
 * hints let tsdb_append_begin skip its own lookup, and a caller tell
 * known series (their labels passed the checks when they were created)
 * from new ones before it appends.  A series a cut drops meanwhile is
 * looked up again by the append. */
void tsdb_lookup(tsdb *db, const tsdb_series_in *series, size_t n, tsdb_series_hint *hints);

/* ---- Reading ---- */

typedef struct tsdb_series_set tsdb_series_set;
typedef struct tsdb_iter tsdb_iter;

typedef struct tsdb_select_limits {
    uint64_t max_series; /* 0 = none; SM_ELIMIT past it */
} tsdb_select_limits;

/* Series matching all matchers (at least one must not match the empty
 * string, as in Prometheus) with chunks overlapping [mint, maxt] (inclusive;
 * a series may then yield no sample inside the range), sorted by labels.  The set is a consistent snapshot: later appends, compactions
 * and deletions do not change it.  Free with tsdb_series_set_free. */
int tsdb_select(tsdb *db, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                const tsdb_select_limits *lim, tsdb_series_set **out, sm_error *err);
size_t tsdb_series_set_count(const tsdb_series_set *s);
const sm_labels *tsdb_series_set_labels(const tsdb_series_set *s, size_t i);
void tsdb_series_set_free(tsdb_series_set *s);

/* An iterator over series i's samples in the set's [mint, maxt]; it lives
 * until the set is freed (several may be open at once). */
int tsdb_series_set_iter(tsdb_series_set *s, size_t i, tsdb_iter **out);
/* 1 with a sample, 0 at the end, < 0 on error (SM_ECORRUPT). */
int tsdb_iter_next(tsdb_iter *it, sm_ms_t *t, double *v);
/* Skip forward so that the next sample returned has time >= t. */
int tsdb_iter_seek(tsdb_iter *it, sm_ms_t t);
/* Up to cap samples: the count (0 at the end) or < 0 on error. */
int tsdb_iter_next_batch(tsdb_iter *it, sm_ms_t *ts, double *vs, size_t cap);

/* Sorted distinct label names (values of `name`) over series matching the
 * matchers (all series when nms == 0) with data in [mint, maxt].  Strings
 * and the array are allocated from the arena. */
int tsdb_label_names(tsdb *db, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                     sm_arena *a, const char ***names, size_t *n, sm_error *err);
int tsdb_label_values(tsdb *db, const char *name, const sm_matcher *ms, size_t nms,
                      sm_ms_t mint, sm_ms_t maxt, sm_arena *a, const char ***values, size_t *n,
                      sm_error *err);

/* ---- Maintenance ---- */

/* Cut everything in the head into blocks; durable when it returns; the WAL
 * is truncated. */
int tsdb_flush(tsdb *db, sm_error *err);
/* One round of background work now: cut the head if it spans more than
 * 1.5 block ranges, compact blocks, apply retention. */
int tsdb_compact(tsdb *db, sm_error *err);

typedef struct tsdb_stats {
    uint64_t head_series;
    uint64_t head_chunks;
    uint64_t head_samples;
    uint64_t head_bytes;     /* heap bytes of the head (series, chunks, index) */
    uint64_t head_chunk_bytes; /* of which encoded samples (issue 3's "beyond its sample bytes") */
    uint64_t head_sealed_samples; /* samples in the head's sealed chunks */
    uint64_t head_sealed_bytes;   /* their bytes, shared time columns counted once */
    uint64_t head_shared_columns; /* distinct time columns the head's chunks share */
    sm_ms_t head_mint, head_maxt;
    uint64_t blocks;
    uint64_t block_bytes;
    uint64_t compactions;
    uint64_t retention_deletions;
    wal_stats wal;
} tsdb_stats;
void tsdb_get_stats(tsdb *db, tsdb_stats *out);

#endif
