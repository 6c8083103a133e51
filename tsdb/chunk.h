/* SPDX-License-Identifier: Apache-2.0
 *
 * chunk.h - columnar Gorilla chunks: a timestamp column (delta-of-delta) and
 * a value column (XOR with leading/trailing-zero reuse, or cheaper encodings
 * where the data allows), each a bit stream, behind a small header with the
 * count and the time range.  Byte format: docs/FORMAT.md, "Chunk".
 *
 * An encoder takes samples in strictly increasing time order and can be
 * serialised at any moment without being disturbed (the head serves queries
 * from its open chunks this way).  Decoders are pure and bounded: they
 * validate every read against the end of the buffer and return SM_ECORRUPT,
 * never a partial result; they allocate nothing and do not log.
 *
 * Every float64 bit pattern round-trips exactly (NaN payloads, the stale
 * marker, -0.0, infinities); every int64 timestamp round-trips.
 */
#ifndef SEISMO_TSDB_CHUNK_H
#define SEISMO_TSDB_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/sm_arena.h"
#include "base/sm_buf.h"
#include "base/sm_types.h"

#define CHUNK_MAX_SAMPLES 65535u

typedef struct chunk_enc chunk_enc;

chunk_enc *chunk_enc_new(void);
void chunk_enc_free(chunk_enc *e); /* NULL is fine */
/* Empty the encoder, keeping its buffers for reuse. */
void chunk_enc_reset(chunk_enc *e);
/* Empty the encoder and free its buffers, which grow again from 32 bytes
 * as samples arrive: for an encoder that is kept open while it fills (the
 * head's open chunks are half full on average, so buffers kept at a full
 * chunk's size would be about half empty). */
void chunk_enc_reset_release(chunk_enc *e);

/* Append one sample.  t must be greater than the last appended t
 * (SM_EINVAL otherwise); SM_ELIMIT when the chunk holds CHUNK_MAX_SAMPLES;
 * SM_ENOMEM.  On any failure the encoder is exactly as it was. */
int chunk_enc_append(chunk_enc *e, sm_ms_t t, double v);

uint32_t chunk_enc_count(const chunk_enc *e);
sm_ms_t chunk_enc_mint(const chunk_enc *e); /* undefined when count == 0 */
sm_ms_t chunk_enc_maxt(const chunk_enc *e);
/* Bytes the chunk would take if finished now. */
size_t chunk_enc_size_bytes(const chunk_enc *e);
/* Bytes of the encoder's streaming form (delta-of-delta times and XOR
 * values, about the Gorilla paper's size): what an open chunk costs. */
size_t chunk_enc_stream_bytes(const chunk_enc *e);
/* Heap bytes held by the encoder (for memory accounting). */
size_t chunk_enc_mem_bytes(const chunk_enc *e);

/* Append the finished chunk's bytes to out.  The encoder is unchanged and
 * may keep appending.  0 or SM_ENOMEM (out unchanged). */
int chunk_enc_finish(const chunk_enc *e, sm_buf *out);

/* Append the chunk's bytes in the encoder's own streaming form (time
 * encoding STREAM, docs/FORMAT.md): a copy, no re-encoding, so it costs
 * what a memcpy costs and is about the Gorilla paper's size.  For reading
 * an open chunk now (queries); chunk_enc_finish's form is what is kept.
 * 0, SM_EINVAL when empty, or SM_ENOMEM (out unchanged). */
int chunk_enc_snapshot(const chunk_enc *e, sm_buf *out);

/* One-shot: encode n samples (times strictly increasing) into out. */
int chunk_encode(const sm_ms_t *ts, const double *vs, size_t n, sm_buf *out);

typedef struct chunk_info {
    uint32_t count;
    sm_ms_t mint, maxt;
    uint8_t ts_enc;  /* timestamp column encoding (docs/FORMAT.md) */
    uint8_t val_enc; /* value column encoding */
} chunk_info;

/* Validate and read the header only.  0 or SM_ECORRUPT. */
int chunk_info_read(const uint8_t *p, size_t len, chunk_info *out);

/* Decode the whole chunk into ts[] and vs[] (each with room for cap
 * samples; cap must be >= the chunk's count).  On success *n is the count.
 * SM_ECORRUPT on any malformed input (also when the decoded times are not
 * strictly increasing or disagree with the header), SM_EINVAL when cap is too
 * small.  Outputs are undefined on failure. */
int chunk_decode(const uint8_t *p, size_t len, sm_ms_t *ts, double *vs, size_t cap, size_t *n);

/* Time columns shared inside a block or the head (docs/FORMAT.md, "Shared
 * time columns"); for the block writer and reader and the head only.
 *
 * chunk_time_column: where a GRID or DOD time column lies in chunk p
 * (offset from p, length): 0; 1 when the chunk has another time encoding;
 * SM_ECORRUPT.  chunk_ref_encode appends to out the form of chunk p whose
 * time column is a reference to an identical column at offset ref_off of
 * the block's chunks file.  chunk_is_ref tells such a chunk, and
 * chunk_ref_expand turns it (p inside file[0..file_len)) back into the
 * original chunk, allocated in a: 0, SM_ECORRUPT (a bad reference) or
 * SM_ENOMEM.  chunk_decode refuses a reference chunk (SM_ECORRUPT).
 *
 * Without the copy: chunk_ref_column finds the column a reference chunk p
 * (inside file) stands for, checking that it lies inside the file;
 * chunk_decode_ref decodes p with that column (with tcol NULL it is
 * chunk_decode); chunk_ref_expand_to appends the expanded chunk to out.
 * chunk_info_read reads a reference chunk's header too (ts_enc 4).
 * chunk_ref_target reads a reference chunk's offset and column length
 * (the head stores a column id in the offset): 0 or SM_ECORRUPT. */
int chunk_time_column(const uint8_t *p, size_t len, size_t *off, size_t *tlen);
int chunk_ref_encode(const uint8_t *p, size_t len, uint64_t ref_off, sm_buf *out);
bool chunk_is_ref(const uint8_t *p, size_t len);
int chunk_ref_expand(const uint8_t *file, size_t file_len, const uint8_t *p, size_t len, sm_arena *a,
                     const uint8_t **out, uint32_t *out_len);
int chunk_ref_column(const uint8_t *file, size_t file_len, const uint8_t *p, size_t len, const uint8_t **tcol,
                     uint32_t *tlen);
int chunk_decode_ref(const uint8_t *p, size_t len, const uint8_t *tcol, size_t tlen, sm_ms_t *ts, double *vs,
                     size_t cap, size_t *n);
int chunk_ref_expand_to(const uint8_t *p, size_t len, const uint8_t *tcol, size_t tlen, sm_buf *out);
int chunk_ref_target(const uint8_t *p, size_t len, uint64_t *off, uint32_t *tlen);

#endif
