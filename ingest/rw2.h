/* SPDX-License-Identifier: Apache-2.0
 *
 * rw2.h - decoding a Prometheus remote_write 2.0 request body (a snappy
 * block holding a protobuf io.prometheus.write.v2.Request; the Remote-Write
 * 2.0 specification, and docs/FORMAT.md, "remote_write 2.0") into the same
 * rw_request as remote_write 1.0 (rw.h), so that the server appends both
 * the same way.  The server picks this decoder for the Content-Type
 * `application/x-protobuf;proto=io.prometheus.write.v2.Request`.
 *
 * Everything is allocated from the caller's arena (protobuf-c's allocator
 * hook points at it).  The decoded size is checked against the limit from
 * the snappy preamble before anything is decompressed.
 *
 * The request as a whole is refused (SM_ECORRUPT) when it is not a
 * protobuf Request, or when its symbols table does not start with "" (or is
 * missing while there are series).  Per series, the label rules and limits
 * are remote_write 1.0's (rw.h): labels sorted when they arrive unsorted,
 * empty values dropped, and a series with a repeated or invalid label name,
 * an invalid metric name, invalid UTF-8, a NUL byte, no labels left, more
 * labels or longer ones than the limits is left out and counted, with the
 * first such problem described in `reject`.  Peculiar to 2.0, a series is
 * also left out when its labels_refs have an odd count or an index past the
 * symbols (so are those of its exemplars and its metadata's help_ref and
 * unit_ref), or when it has neither samples nor histograms (the spec's
 * MUST; it has no samples to count).  Sample.start_timestamp is read and
 * ignored.  Native histograms and exemplars are counted but not stored, as
 * with 1.0; `metadata` counts the series that carry a Metadata message.
 */
#ifndef SEISMO_INGEST_RW2_H
#define SEISMO_INGEST_RW2_H

#include <stddef.h>
#include <stdint.h>

#include "rw.h"
#include "tsdb/base/sm_arena.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/tsdb.h"

/* The Content-Type parameter that names the 2.0 message (and the 1.0 one). */
#define RW2_PROTO "io.prometheus.write.v2.Request"
#define RW1_PROTO "prometheus.WriteRequest"

/* Decode body.  Returns 0 (some series may have been left out: see
 * rejected_series), SM_ELIMIT when the decoded size passes the limit (nothing
 * decompressed) or decoding needs more than the arena's limit (either way
 * the request can never decode: the server answers 413), SM_ECORRUPT for
 * invalid snappy or protobuf or a bad symbols table (err says which),
 * SM_ENOMEM when the heap fails. */
int rw2_decode(const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a, rw_request *out,
               sm_error *err);
/* rw2_decode, asking db (when not NULL) which of the series it has already
 * (tsdb_lookup), as rw_decode_for does: those are not checked against the
 * label rules again and carry their ref in out->hints. */
int rw2_decode_for(tsdb *db, const uint8_t *body, size_t len, const rw_limits *lim, sm_arena *a,
                   rw_request *out, sm_error *err);

/* Encode series as a remote_write 2.0 body (for tests and the client): one
 * symbols table ("" first, then each distinct string once, in the order
 * first used), each series' labels as given (callers pass them sorted), its
 * samples with no start timestamp.  Appends to out.  0, SM_ENOMEM, or
 * SM_EINVAL when snappy fails. */
int rw2_encode(const tsdb_series_in *series, size_t n, sm_buf *out);

#endif
