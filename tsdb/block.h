/* SPDX-License-Identifier: Apache-2.0
 *
 * block.h - immutable on-disk blocks: one directory per block holding chunk
 * data, an index (symbols, series, postings, chunk references) and metadata.
 * Byte formats: docs/FORMAT.md, "Block".
 *
 * Writing: a block is built in "<data_dir>/<ULID>.tmp/" through io_uring,
 * every file is fsynced, and the directory is published by an atomic rename
 * to "<data_dir>/<ULID>/" followed by an fsync of data_dir (tsdb/README.md,
 * durability sequence).  A ".tmp" directory found on start is half-written
 * and is removed by the block set.
 *
 * Reading: files are memory-mapped and validated (magic, version, CRCs of
 * every section, bounds of every offset) on open; a block that fails is
 * reported SM_ECORRUPT and never crashes the reader.  Blocks are reference
 * counted: a query acquires the blocks it reads and releases them when done;
 * a block that compaction or retention deleted goes away at its last release.
 */
#ifndef SEISMO_TSDB_BLOCK_H
#define SEISMO_TSDB_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_error.h"
#include "base/sm_types.h"
#include "labels.h"
#include "matcher.h"
#include "sel.h"
#include "uring.h"

#define BLOCK_ULID_LEN 26

typedef struct block_meta {
    char ulid[BLOCK_ULID_LEN + 1];
    sm_ms_t mint;      /* inclusive */
    sm_ms_t maxt;      /* exclusive */
    uint64_t nseries;
    uint64_t nchunks;
    uint64_t nsamples;
    uint64_t bytes;    /* all files of the block */
    uint32_t level;    /* 1 for a block cut from the head, +1 per compaction */
} block_meta;

/* A new ULID (26 Crockford base32 characters: 48-bit ms time, 80 random
 * bits) for time now_ms. */
void block_ulid_new(sm_ms_t now_ms, char out[BLOCK_ULID_LEN + 1]);

typedef struct block_writer block_writer;

/* Start a block covering [mint, maxt) in data_dir.  The ring is used for all
 * writes and must outlive the writer. */
int block_writer_new(const char *data_dir, sm_uring *ring, sm_ms_t mint, sm_ms_t maxt,
                     uint32_t level, block_writer **out, sm_error *err);
/* Add one series.  Series must come in strictly increasing sm_labels_cmp
 * order; chunks sorted by mint, not overlapping, every sample inside
 * [mint, maxt).  Series with no chunks are skipped.  Everything is checked
 * before anything is written (SM_EINVAL); more than 256 labels or 2^24
 * chunks is SM_ELIMIT.  After a failed write the writer can only be
 * aborted. */
int block_writer_add_series(block_writer *w, const sm_labels *ls, const tsdb_chunk_ref *chunks,
                            uint32_t n, sm_error *err);
/* Write index and meta, fsync, publish.  On success *meta describes the new
 * block and w is freed; on failure the temporary directory is removed and w
 * is freed too. */
int block_writer_commit(block_writer *w, block_meta *meta, sm_error *err);
/* Abandon: remove the temporary directory and free. */
void block_writer_abort(block_writer *w);

typedef struct block block;

/* Open the block directory `dir` (refcount 1, owned by the caller). */
int block_open(const char *dir, block **out, sm_error *err);
void block_acquire(block *b);
/* Drop a reference; at zero the block is unmapped, and its directory removed
 * if block_mark_deleted was called. */
void block_release(block *b);
void block_mark_deleted(block *b);
const block_meta *block_get_meta(const block *b);
const char *block_dir(const block *b);

/* Series matching every matcher (all series when nms == 0) with chunks
 * overlapping [mint, maxt].  Arrays in the arena; label strings and chunk
 * bytes point into the block (valid while the caller holds a reference);
 * prio is set to `prio`. */
int block_select(block *b, const sm_matcher *ms, size_t nms, sm_ms_t mint, sm_ms_t maxt,
                 uint32_t prio, sm_arena *a, tsdb_sel *out, sm_error *err);
/* Sorted distinct label names / values of `name` among series matching the
 * matchers (all series when nms == 0).  Strings in the arena. */
int block_label_names(block *b, const sm_matcher *ms, size_t nms, sm_arena *a,
                      const char ***names, size_t *n, sm_error *err);
int block_label_values(block *b, const char *name, const sm_matcher *ms, size_t nms,
                       sm_arena *a, const char ***values, size_t *n, sm_error *err);

/* Check every section and decode every chunk (used by tests, fuzzers and
 * `seismo` tooling). */
int block_verify(block *b, sm_error *err);

#endif
