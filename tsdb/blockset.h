/* SPDX-License-Identifier: Apache-2.0
 *
 * blockset.h - the set of blocks in a data directory, and the work done on
 * it: loading at start (removing half-written ".tmp" directories), adding
 * blocks cut from the head, compaction of adjacent and overlapping blocks
 * into larger ones, and retention by age and by size.
 *
 * Compaction (a design block in blockset.c explains it): blocks are grouped
 * into ranges of block_range_ms * 3^k (k = 1, 2, ...), capped at a tenth of
 * the retention or 31 days; a range whose time is fully covered by smaller
 * blocks, or any set of overlapping blocks, is merged into one block.
 * Overlapping samples are merged with the newer block winning on equal
 * timestamps.  The new block is published before the old ones are marked
 * deleted, so a crash in between leaves duplicates that the next round (and
 * every query, through merge.h) resolves.
 *
 * Retention: blocks whose maxt is older than (newest maxt - retention_ms) are
 * deleted, then the oldest blocks while the total exceeds retention_bytes.
 *
 * Thread safety: all calls may come from any thread; compaction runs in the
 * caller's thread (the tsdb background thread).
 */
#ifndef SEISMO_TSDB_BLOCKSET_H
#define SEISMO_TSDB_BLOCKSET_H

#include <stddef.h>
#include <stdint.h>

#include "base/sm_error.h"
#include "base/sm_types.h"
#include "block.h"

typedef struct blockset_opts {
    int64_t block_range_ms;   /* smallest block range (default 2 h) */
    int64_t retention_ms;     /* 0: no age limit */
    uint64_t retention_bytes; /* 0: no size limit */
} blockset_opts;

typedef struct blockset blockset;

int blockset_open(const char *data_dir, const blockset_opts *o, blockset **out, sm_error *err);
void blockset_close(blockset *s);

/* Take ownership of a block just written (from block_open of its dir). */
int blockset_add(blockset *s, block *b);

/* Acquire the blocks overlapping [mint, maxt], ordered oldest ULID first (so
 * index order is a valid prio: later wins). Release with blockset_release. */
int blockset_acquire(blockset *s, sm_ms_t mint, sm_ms_t maxt, block ***blocks, size_t *n);
void blockset_release(block **blocks, size_t n);

/* One round of compaction; returns the number of blocks written (>= 0). */
int blockset_compact(blockset *s, sm_uring *ring, sm_error *err);
/* Apply retention; returns the number of blocks deleted (>= 0). */
int blockset_apply_retention(blockset *s, sm_error *err);

typedef struct blockset_stats {
    uint64_t blocks;
    uint64_t bytes;
    sm_ms_t mint, maxt; /* over all blocks; 0,0 when empty */
    uint64_t compactions;
    uint64_t retention_deletions;
} blockset_stats;
void blockset_get_stats(blockset *s, blockset_stats *out);

#endif
