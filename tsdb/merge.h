/* SPDX-License-Identifier: Apache-2.0
 *
 * merge.h - combining selections from several sources, and reading samples
 * back out of a series' chunk list.
 *
 * merge_sels joins selections (each sorted by labels) into one: series with
 * equal label sets are one series whose chunk list is the union of the
 * sources' chunks, sorted by mint.  Chunks may then overlap in time (an
 * out-of-order sample written to a later block, a crash between compaction
 * and deletion); the sample iterator resolves overlaps by timestamp, and on
 * equal timestamps the chunk with the higher prio wins.
 *
 * The sample iterator decodes one chunk at a time into buffers from the
 * arena (never a whole range), so memory is bounded by the chunks that
 * overlap at one instant.
 */
#ifndef SEISMO_TSDB_MERGE_H
#define SEISMO_TSDB_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_types.h"
#include "sel.h"

/* Merge n selections into *out (arrays from the arena). */
int merge_sels(const tsdb_sel *sels, size_t n, sm_arena *a, tsdb_sel *out);

/* Iterator over the samples of one series in [mint, maxt], in time order. */
typedef struct merge_iter merge_iter;

int merge_iter_new(sm_arena *a, const tsdb_chunk_ref *chunks, uint32_t n, sm_ms_t mint,
                   sm_ms_t maxt, merge_iter **out);
/* 1 with a sample, 0 at the end, SM_ECORRUPT for a bad chunk, SM_ENOMEM. */
int merge_iter_next(merge_iter *it, sm_ms_t *t, double *v);
/* Position so that the next call to merge_iter_next returns the first sample
 * with time >= t.  Only forward; 0 or an error. */
int merge_iter_seek(merge_iter *it, sm_ms_t t);
/* Up to cap samples; returns the count (0 at the end) or an error. */
int merge_iter_next_batch(merge_iter *it, sm_ms_t *ts, double *vs, size_t cap);

#endif
