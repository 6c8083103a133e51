/* SPDX-License-Identifier: Apache-2.0
 *
 * shape.c - shape novelty (shape.h).
 *
 * The level ring is stored twice over (ring[i] == ring[i + cap]) so that
 * every window of the last `len` levels is contiguous: the window starting
 * at the a-th oldest level is ring[first + a ..], first = (next slot + cap -
 * len) mod cap.
 * Only the first copy is encoded.
 *
 * Every double of the state stays finite for any finite input: block sums
 * add v / ML_SHAPE_BLOCK and the running mean halves before it adds, so
 * nothing overflows; a level computed from an overflowing difference
 * (values near DBL_MAX of both signs) is clamped, not cast from NaN.
 */
#include "ml/shape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_int.h"
#include "tsdb/base/sm_alloc.h"

int ml_shape_init(ml_shape *s, uint32_t history, sm_error *err) {
    memset(s, 0, sizeof *s);
    if (history < ML_SHAPE_MIN_HISTORY || history > ML_SHAPE_MAX_HISTORY)
        return SM_ERR(err, SM_EINVAL, "shape: history must be %d..%u levels", ML_SHAPE_MIN_HISTORY,
                      ML_SHAPE_MAX_HISTORY);
    s->cap = history;
    s->hist = sm_calloc(ML_SHAPE_BINS, sizeof *s->hist);
    s->ring = sm_calloc((size_t)2 * history, sizeof *s->ring);
    if (!s->hist || !s->ring) {
        ml_shape_fini(s);
        return SM_ERR(err, SM_ENOMEM, "shape: no memory for %u levels", history);
    }
    return 0;
}

void ml_shape_fini(ml_shape *s) {
    sm_free(s->hist);
    sm_free(s->ring);
    s->hist = NULL;
    s->ring = NULL;
}

/* The level of a coarse value x (range units), clamped to int16. */
static int level_of(double x) {
    double l = nearbyint(x * ML_SHAPE_LEVELS); /* half to even in the default mode */
    if (isnan(l)) return 0;
    return l < -32767.0 ? -32767 : l > 32767.0 ? 32767 : (int)l;
}

/* Count level l in the histogram and return the median level after it:
 * the (total / 2)-th smallest, counting from 0. */
static int push_median(ml_shape *s, int l) {
    int b = (l < ML_SHAPE_MED_LO ? ML_SHAPE_MED_LO : l > ML_SHAPE_MED_HI ? ML_SHAPE_MED_HI : l) - ML_SHAPE_MED_LO;
    if (s->hist[b] == UINT32_MAX) { /* after 4e9 levels: halve, keeping every bin that was used */
        s->total = 0;
        for (int i = 0; i < ML_SHAPE_BINS; i++) s->total += s->hist[i] = (s->hist[i] + 1) / 2;
    }
    s->hist[b]++;
    s->total++;
    uint64_t q = s->total / 2, cum = 0;
    for (int i = 0; i < ML_SHAPE_BINS; i++)
        if ((cum += s->hist[i]) > q) return i + ML_SHAPE_MED_LO;
    return ML_SHAPE_MED_HI; /* not reached: cum ends at total > q */
}

/* The ring slot of the next level. */
static uint32_t next_slot(const ml_shape *s) { return (uint32_t)(s->rows / ML_SHAPE_BLOCK % s->cap); }

/* Push the level of the block that rows has just completed into the ring
 * (both copies): its slot is the one before next_slot. */
static void push_level(ml_shape *s, int l) {
    uint32_t at = (next_slot(s) + s->cap - 1) % s->cap;
    s->ring[at] = s->ring[at + s->cap] = (int16_t)l;
}

/* Distance in range units from the last window to the nearest earlier
 * window that does not overlap it (len >= 2 * ML_SHAPE_WINDOW). */
static double nearest(const ml_shape *s) {
    uint32_t len = ml_shape_len(s);
    const int16_t *w = s->ring + (next_slot(s) + s->cap - len) % s->cap; /* oldest level */
    const int16_t *cur = w + len - ML_SHAPE_WINDOW;
    int64_t best = INT64_MAX;
    for (uint32_t a = 0; a + 2 * ML_SHAPE_WINDOW <= len; a++) {
        int64_t d = 0;
        for (int i = 0; i < ML_SHAPE_WINDOW; i++) {
            int64_t e = (int64_t)w[a + i] - cur[i];
            d += e * e;
        }
        if (d < best) best = d;
    }
    return sqrt((double)best) / ML_SHAPE_LEVELS;
}

double ml_shape_next(ml_shape *s, double v) {
    if (!isfinite(v)) return 0.0;
    uint64_t row = s->rows++;
    if (row < ML_SHAPE_RANGE_ROWS) {
        if (row == 0 || v < s->lo) s->lo = v;
        if (row == 0 || v > s->hi) s->hi = v;
    }
    uint64_t inblk = row % ML_SHAPE_BLOCK; /* v's place in its block */
    if (inblk == 0 || v > s->bmax) s->bmax = v;
    if (inblk == 0 || v < s->bmin) s->bmin = v;
    s->bsum = (inblk == 0 ? 0.0 : s->bsum) + v / ML_SHAPE_BLOCK;
    if (inblk < ML_SHAPE_BLOCK - 1) return 0.0;

    /* the block's coarse value, spike kept */
    double mean = s->bsum;
    s->ma = row < ML_SHAPE_BLOCK ? mean : 0.5 * s->ma + 0.5 * mean; /* the first block starts ma */
    double ds = fabs(s->bmax - s->ma) < fabs(s->bmin - s->ma) ? s->bmin : s->bmax;
    if (fabs(ds - mean) < 0.1 * fabs(mean)) ds = mean;
    double span = s->hi > s->lo ? s->hi - s->lo : s->lo != 0 ? fabs(s->lo) : 1.0;
    int l = level_of((ds - s->lo) / span);
    int med = push_median(s, l);
    if (abs(l - med) < ML_SHAPE_SNAP) l = med;
    push_level(s, l);
    /* levels >= ML_SHAPE_MIN_HISTORY also gives nearest() its 2 windows:
     * len = min(levels, cap) and cap >= ML_SHAPE_MIN_HISTORY */
    if (row < ML_SHAPE_RANGE_ROWS || s->rows / ML_SHAPE_BLOCK < ML_SHAPE_MIN_HISTORY) return 0.0;
    double r = 1.0 - exp2(-nearest(s) / ML_SHAPE_D0);
    return r < ML_SHAPE_MAX ? r : ML_SHAPE_MAX;
}

/* ---- persistence: rows le64, pos le32, len le32, bsum bmax bmin ma lo
 * hi f64, hist ML_SHAPE_BINS x le32, ring cap x le16 (two's complement) */

uint64_t ml_shape_encoded_len(uint32_t history) {
    return 8 + 4 + 4 + 6 * 8 + (uint64_t)ML_SHAPE_BINS * 4 + (uint64_t)history * 2;
}

int ml_shape_encode(const ml_shape *s, sm_buf *b) {
    int rc = sm_buf_reserve(b, (size_t)ml_shape_encoded_len(s->cap));
    rc = rc ? rc : sm_buf_put_le64(b, s->rows);
    rc = rc ? rc : sm_buf_put_le32(b, next_slot(s));
    rc = rc ? rc : sm_buf_put_le32(b, ml_shape_len(s));
    const double d[] = {s->bsum, s->bmax, s->bmin, s->ma, s->lo, s->hi}; /* as decode's dst */
    for (size_t i = 0; i < 6 && !rc; i++) rc = ml_put_f64(b, d[i]);
    for (int i = 0; i < ML_SHAPE_BINS && !rc; i++) rc = sm_buf_put_le32(b, s->hist[i]);
    for (uint32_t i = 0; i < s->cap && !rc; i++) {
        uint16_t u = (uint16_t)s->ring[i];
        rc = sm_buf_put_u8(b, (uint8_t)(u & 0xff));
        rc = rc ? rc : sm_buf_put_u8(b, (uint8_t)(u >> 8));
    }
    return rc;
}

int ml_shape_decode(ml_shape *s, sm_rd *r) {
    if (sm_rd_left(r) < ml_shape_encoded_len(s->cap)) return SM_ECORRUPT;
    uint64_t rows;
    uint32_t pos, len;
    double d[6];
    sm_rd_le64(r, &rows);
    sm_rd_le32(r, &pos);
    sm_rd_le32(r, &len);
    for (int i = 0; i < 6; i++) ml_rd_f64(r, &d[i]);
    /* pos and len are stored for readers of the bytes; both follow from rows */
    uint64_t levels = rows / ML_SHAPE_BLOCK;
    if (pos != levels % s->cap || len != (levels < s->cap ? levels : s->cap)) return SM_ECORRUPT;
    for (int i = 0; i < 6; i++)
        if (!isfinite(d[i])) return SM_ECORRUPT;
    if (d[4] > d[5] || (rows % ML_SHAPE_BLOCK && d[2] > d[1])) return SM_ECORRUPT; /* lo <= hi, open block min <= max */
    uint64_t total = 0;
    const uint8_t *p;
    sm_rd_bytes(r, (size_t)ML_SHAPE_BINS * 4, &p);
    for (int i = 0; i < ML_SHAPE_BINS; i++) total += s->hist[i] = sm_load_le32(p + 4 * i);
    if (total > levels || (levels && !total)) return SM_ECORRUPT;
    sm_rd_bytes(r, (size_t)s->cap * 2, &p);
    for (uint32_t i = 0; i < s->cap; i++) s->ring[i] = s->ring[i + s->cap] = (int16_t)sm_load_le16(p + 2 * i);
    double *dst[] = {&s->bsum, &s->bmax, &s->bmin, &s->ma, &s->lo, &s->hi};
    for (int i = 0; i < 6; i++) *dst[i] = d[i];
    s->rows = rows;
    s->total = total;
    return 0;
}
