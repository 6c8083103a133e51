/* SPDX-License-Identifier: Apache-2.0
 *
 * sel.h - a selection: the series a source (the head, one block) holds for a
 * set of matchers and a time range, each with the encoded chunks that overlap
 * the range.  Sources fill it, merge.h combines several into one, and the
 * public iterators in tsdb.h decode from it.
 *
 * Memory: the arrays and label strings live in the caller's arena; chunk
 * bytes live either in the arena (head chunks are copied) or in a block's
 * mapping, valid while the block is acquired.
 */
#ifndef SEISMO_TSDB_SEL_H
#define SEISMO_TSDB_SEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/sm_types.h"
#include "labels.h"

typedef struct tsdb_chunk_ref {
    sm_ms_t mint, maxt;  /* first and last sample time in the chunk (inclusive) */
    const uint8_t *data; /* chunk.h format */
    uint32_t len;        /* bytes at data */
    uint32_t prio;       /* source precedence: on equal timestamps the higher wins */
    /* A chunk with a shared time column (docs/FORMAT.md): data is its
     * reference form and tcol[0..tlen) the column it refers to, inside the
     * block's mapped chunks file, or in the head's column table for the
     * chunks head_export hands its writer (chunk_decode_ref).  NULL
     * otherwise. */
    const uint8_t *tcol;
    uint32_t tlen;
} tsdb_chunk_ref;

typedef struct tsdb_sel_series {
    sm_labels labels;
    tsdb_chunk_ref *chunks; /* sorted by mint; may overlap only after a merge */
    uint32_t nchunks;
} tsdb_sel_series;

typedef struct tsdb_sel {
    tsdb_sel_series *v; /* sorted by sm_labels_cmp, no duplicate label sets */
    size_t n;
} tsdb_sel;

#endif
