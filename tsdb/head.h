/* SPDX-License-Identifier: Apache-2.0
 *
 * head.h - the in-memory head: every series seen since the last cut, its
 * open and sealed chunks, and the head's postings index.
 *
 * A series is identified by its label set and by a ref (a positive integer
 * assigned in creation order and logged in the WAL).  Samples may arrive out
 * of order within ooo_window_ms of the newest sample of the whole head; they
 * are merged into the series' chunks.  An identical duplicate is a no-op; a
 * different value at an existing timestamp replaces the old one.
 *
 * Cutting a block: head_export writes every sample with t < maxt, series by
 * series in label order, and detaches what it wrote; head_truncate then
 * frees the detached data and drops series left with no samples.  Samples
 * appended concurrently (also ones with t < maxt) are never lost: whatever
 * an export did not write stays in the head.
 *
 * Memory: overhead per active series (beyond the encoded sample bytes) is
 * kept under 1 KiB; labels are interned.
 *
 * Thread safety: every call may run concurrently with every other, except
 * head_free.  Appends to one series serialise on that series.
 */
#ifndef SEISMO_TSDB_HEAD_H
#define SEISMO_TSDB_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_error.h"
#include "base/sm_types.h"
#include "labels.h"
#include "matcher.h"
#include "sel.h"

typedef struct head_opts {
    int64_t ooo_window_ms;      /* default 1 h */
    uint32_t chunk_max_samples; /* seal a chunk at this many samples (default 120) */
    int64_t chunk_range_ms;     /* chunks never straddle a multiple of this (the
                                   block range, default 2 h) */
    uint64_t max_series;        /* 0 = unlimited */
} head_opts;

typedef struct head head;

int head_new(const head_opts *o, head **out);
void head_free(head *h);

/* Find the series with these labels (already checked with sm_labels_check
 * by the caller) or create it.  SM_ELIMIT when max_series is reached. */
int head_get_or_create(head *h, const sm_labels *ls, uint64_t *ref, bool *created,
                       sm_error *err);
/* head_get_or_create for n label sets (each checked by the caller) under
 * one index write lock, as an appender creates a new client's series:
 * refs[i] (OUT) the ref, created[i] (OUT) whether this call made it; a
 * series past max_series gets ref 0.  SM_ENOMEM stops (the refs of the
 * rest are 0). */
int head_get_or_create_many(head *h, const sm_labels *const *ls, size_t n, uint64_t *refs, bool *created);
/* WAL replay: create a series with a given ref (idempotent when the same
 * ref and labels exist).  Later refs continue above the highest seen. */
int head_create_with_ref(head *h, uint64_t ref, const sm_labels *ls, sm_error *err);

/* Whether the series' SERIES record has reached the WAL (set by the caller
 * after a successful WAL append; false for series created since). */
bool head_series_logged(head *h, uint64_t ref);
void head_series_set_logged(head *h, uint64_t ref);

/* Results of head_append besides errors. */
enum { HEAD_APPENDED = 0, HEAD_DUPLICATE = 1, HEAD_REPLACED = 2 };

/* Would a sample at t be accepted (0) or is it too old (SM_ERANGE)? */
int head_check_window(head *h, sm_ms_t t);
/* Store one sample.  check_window=false skips the out-of-order window check
 * (WAL replay, or a sample already validated and logged).  Returns
 * HEAD_APPENDED, HEAD_DUPLICATE, HEAD_REPLACED, or SM_ERANGE, SM_ENOTFOUND
 * (no such ref), SM_ENOMEM. */
int head_append(head *h, uint64_t ref, sm_ms_t t, double v, bool check_window);

/* Many series' runs under one index lock (an appender's whole batch): each
 * run is n samples of one series (any order), stored under the series' lock
 * without the window check (the caller has checked and logged them);
 * set_logged also marks the series' SERIES record logged (its WAL append
 * has succeeded).  Stops at the first error (SM_ENOTFOUND, SM_ENOMEM);
 * *res sums what was stored before it. */
typedef struct head_run_result {
    uint64_t stored;     /* appended, duplicates and replacements */
    uint64_t duplicates;
    uint64_t replaced;
} head_run_result;
typedef struct head_run {
    uint64_t ref;
    const sm_ms_t *t;
    const double *v;
    uint32_t n;
    bool set_logged;
} head_run;
int head_append_runs(head *h, const head_run *runs, size_t n, head_run_result *res);

/* The refs of existing series with exactly these n label sets (no check,
 * no creation), under one index lock.  hashes[i] is sm_labels_hash(ls[i])
 * when the caller has it, else 0 (hashes may be NULL).  refs[i] (IN/OUT):
 * on entry 0, or a hint, the ref an earlier lookup gave for ls[i] (kept
 * when that series still exists, else looked up again); on return the
 * ref, or 0 when there is no such series.  logged[i] (OUT) whether its
 * SERIES record is logged. */
void head_lookup_many(head *h, const sm_labels *const *ls, const uint64_t *hashes, size_t n, uint64_t *refs,
                      bool *logged);

/* Series matching the matchers with chunks overlapping [mint, maxt] (a
 * series whose chunk spans the range can have no sample inside it: the
 * iterator then yields nothing, as in Prometheus); chunk bytes are
 * copied into the arena (open chunks finished on the fly), prio set on each
 * chunk ref. */
int head_select(head *h, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                uint32_t prio, sm_arena *a, tsdb_sel *out, sm_error *err);
int head_label_names(head *h, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                     sm_arena *a, const char ***names, size_t *n, sm_error *err);
int head_label_values(head *h, const char *name, const sm_matcher *ms, size_t nms,
                      sm_ms_t mint, sm_ms_t maxt, sm_arena *a, const char ***values, size_t *n,
                      sm_error *err);

/* Export every sample with t < maxt: fn is called once per series with data
 * there, in sm_labels_cmp order, with chunks sorted and non-overlapping,
 * each chunk's samples inside [chunk-range-aligned window]; the exported data
 * is detached (still visible to queries until head_truncate).  One export at
 * a time.  *mint_out gets the smallest exported time (or SM_MS_MAX if none).
 * If fn fails the export is undone (nothing detached). */
typedef int (*head_export_fn)(void *ctx, const sm_labels *ls, const tsdb_chunk_ref *chunks,
                              uint32_t n);
int head_export(head *h, sm_ms_t maxt, head_export_fn fn, void *ctx, sm_ms_t *mint_out,
                sm_error *err);
/* Free what the last export detached, and drop series that have no samples
 * left and were not appended to since.  Returns 0. */
int head_truncate(head *h);

/* Is ref a live series (for WAL checkpoints)? */
bool head_has_series(head *h, uint64_t ref);

typedef struct head_stats {
    uint64_t series;
    uint64_t chunks;
    uint64_t samples;
    uint64_t bytes; /* heap bytes: series, labels, chunks, index */
    uint64_t chunk_bytes; /* of which encoded samples: sealed chunks, open streams */
    uint64_t sealed_samples; /* in sealed chunks (live and detached) */
    uint64_t sealed_bytes;   /* their bytes, shared time columns counted once */
    uint64_t shared_columns; /* distinct time columns shared between chunks */
    sm_ms_t mint;   /* smallest sample time, SM_MS_MAX when empty */
    sm_ms_t maxt;   /* largest sample time, SM_MS_MIN when empty */
} head_stats;
void head_get_stats(head *h, head_stats *out);

#endif
