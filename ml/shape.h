/* SPDX-License-Identifier: Apache-2.0
 *
 * shape.h - shape novelty: how far the recent shape of one series is from
 * every shape it has shown before.  The residual and forest scores judge a
 * point against a prediction; a series that moves in a way it never has
 * (a new oscillation, a ramp, a square wave losing its beat) can stay
 * inside every band and still be new.  ml/README.md ("Online mode" and
 * "Evaluation") gives the rationale and the NAB figures; the idea of a coarse,
 * spike-keeping view of the series is from ARTime's preprocessing (Mark
 * Hampton, NAB), the code and the distance are Seismo's own.
 *
 * Per value v (NaN and infinities are skipped and score 0):
 *   block    every ML_SHAPE_BLOCK values become one coarse value: of the
 *            block's max and min, the one farther from a running mean of
 *            block means (ma = (ma + mean) / 2), or the block mean when
 *            that is within 10 % of it, so a spike survives the averaging;
 *   level    the coarse value in units of the range of the first
 *            ML_SHAPE_RANGE_ROWS values, rounded to 1/ML_SHAPE_LEVELS
 *            (half to even) and, when within ML_SHAPE_SNAP levels of the
 *            running median of all levels so far, set to that median, so
 *            that noise around the usual level is one flat line;
 *   window   the last ML_SHAPE_WINDOW levels;
 *   score    d = Euclidean distance (in range units) from the window to
 *            the nearest earlier window that does not overlap it, among
 *            the `history` levels kept; 1 - 2^(-d / ML_SHAPE_D0), from the
 *            value that completes a block, once ML_SHAPE_RANGE_ROWS values
 *            and 2 * ML_SHAPE_WINDOW + 1 levels have been seen, at most
 *            ML_SHAPE_MAX; 0 otherwise.
 *
 * Cost per block: history * ML_SHAPE_WINDOW integer multiply-adds.  The
 * median is that of a histogram of levels clamped to [ML_SHAPE_MED_LO,
 * ML_SHAPE_MED_HI] (range units -2..3: a median outside it snaps to the
 * edge).  Deterministic; the state encodes to bytes (docs/ML.md,
 * "Streaming scorer state").
 */
#ifndef SEISMO_ML_SHAPE_H
#define SEISMO_ML_SHAPE_H

#include <stdint.h>

#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"

#define ML_SHAPE_BLOCK 4
#define ML_SHAPE_WINDOW 8
#define ML_SHAPE_RANGE_ROWS 256
#define ML_SHAPE_LEVELS 80
#define ML_SHAPE_SNAP 6 /* levels: 0.075 range units */
#define ML_SHAPE_D0 0.1
/* The largest shape score.  At weight 0.5 the shape part then stays at
 * most 0.4995, below the threshold even as printed with six decimals
 * (without the cap, 0.5 x a score that rounds to 1 printed as 0.500000
 * and alarmed on its own).  Reached at d = 1 range unit at D0 0.1. */
#define ML_SHAPE_MAX 0.999
#define ML_SHAPE_MED_LO (-2 * ML_SHAPE_LEVELS)
#define ML_SHAPE_MED_HI (3 * ML_SHAPE_LEVELS)
#define ML_SHAPE_BINS (ML_SHAPE_MED_HI - ML_SHAPE_MED_LO + 1)
#define ML_SHAPE_MIN_HISTORY (2 * ML_SHAPE_WINDOW + 1)
#define ML_SHAPE_MAX_HISTORY (1u << 20)

typedef struct ml_shape {
    uint32_t cap;       /* levels kept (history) */
    uint64_t rows;      /* finite values seen: levels made = rows / ML_SHAPE_BLOCK,
                           values in the open block = rows % ML_SHAPE_BLOCK; the
                           level ring holds the last ml_shape_len of them, the next
                           one goes to slot levels % cap */
    double bsum, bmax, bmin; /* the open block */
    double ma;          /* running mean of block means (levels > 0) */
    double lo, hi;      /* range of the first ML_SHAPE_RANGE_ROWS values (rows > 0) */
    uint64_t total;     /* levels in the histogram */
    uint32_t *hist;     /* ML_SHAPE_BINS counts */
    int16_t *ring;      /* cap levels */
} ml_shape;

/* Levels in the ring: min(levels made, cap). */
static inline uint32_t ml_shape_len(const ml_shape *s) {
    uint64_t levels = s->rows / ML_SHAPE_BLOCK;
    return levels < s->cap ? (uint32_t)levels : s->cap;
}

/* history: levels kept, ML_SHAPE_MIN_HISTORY..ML_SHAPE_MAX_HISTORY. */
int ml_shape_init(ml_shape *s, uint32_t history, sm_error *err);
void ml_shape_fini(ml_shape *s);

/* The shape score of the next value in [0, ML_SHAPE_MAX]; then learns from it. */
double ml_shape_next(ml_shape *s, double v);

/* The state after the history, which the caller stores: encode appends
 * it, decode reads it into a state initialised with the same history
 * (SM_ECORRUPT on bytes no ml_shape_next could have left). */
int ml_shape_encode(const ml_shape *s, sm_buf *b);
int ml_shape_decode(ml_shape *s, sm_rd *r);
/* Encoded bytes of a state with this history. */
uint64_t ml_shape_encoded_len(uint32_t history);

#endif
