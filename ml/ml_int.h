/* SPDX-License-Identifier: Apache-2.0
 *
 * ml_int.h - private helpers shared by the model codecs of ml/ (never
 * included by a public header): doubles as little-endian IEEE-754 bit
 * patterns, and the common frame of every persisted model
 *
 *   offset size  meaning
 *   0      4     magic (per model kind, ASCII)
 *   4      1     version
 *   5      ...   body (per model kind, docs/ML.md)
 *   len-4  4     CRC-32C (little-endian) of bytes [0, len-4)
 *
 * ml_frame_open checks the magic, the version and the checksum before any
 * byte of the body is parsed (STYLE.md rule 19).
 */
#ifndef SEISMO_ML_ML_INT_H
#define SEISMO_ML_ML_INT_H

#include <stdint.h>
#include <string.h>

#include "tsdb/base/crc32c.h"
#include "tsdb/base/endian.h"
#include "tsdb/base/sm_buf.h"
#include "tsdb/base/sm_error.h"

static inline int ml_put_f64(sm_buf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return sm_buf_put_le64(b, u);
}

static inline int ml_rd_f64(sm_rd *r, double *v) {
    uint64_t u;
    int rc = sm_rd_le64(r, &u);
    if (rc == 0) memcpy(v, &u, sizeof u);
    return rc;
}

/* qsort comparator for doubles (no NaN in the arrays sorted). */
static inline int ml_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The k-th smallest of a[0..n) (0-based, k < n), reordering a so that
 * a[0..k) <= a[k]: quickselect with a median-of-three pivot, O(n)
 * expected.  Each partition is branchless (Lomuto with a swap every step,
 * the index advanced by the comparison) because on residuals the
 * comparisons are coin flips a branch predictor cannot learn; a second
 * pass over the upper part gathers the pivot's equals, so runs of equal
 * values (zeros of a flat series) stay linear. */
static inline double ml_select(double *a, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* a[k] is in [lo, hi) */
    while (hi - lo > 16) {
        double x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi - 1];
        double piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo;
        for (size_t j = lo; j < hi; j++) {
            double t = a[j];
            a[j] = a[i];
            a[i] = t;
            i += t < piv;
        }
        if (k < i) {
            hi = i;
            continue;
        }
        size_t e = i; /* then the pivot's equals, at least the pivot itself */
        for (size_t j = i; j < hi; j++) {
            double t = a[j];
            a[j] = a[e];
            a[e] = t;
            e += t <= piv;
        }
        if (k < e) return piv;
        lo = e;
    }
    for (size_t i = lo + 1; i < hi; i++) { /* insertion sort of the rest */
        double t = a[i];
        size_t j = i;
        for (; j > lo && a[j - 1] > t; j--) a[j] = a[j - 1];
        a[j] = t;
    }
    return a[k];
}

/* Robust scale from k >= 1 absolute deviations a[] (reordered; sum = their
 * sum): 1.4826 * median (the MAD, consistent for normal noise); when more
 * than half the deviations are 0 (a mostly flat series), the 90th
 * percentile / 1.645; then the mean absolute deviation * 1.2533; never
 * below floor > 0.  Outliers move none of the first two. */
static inline double ml_robust_scale(double *a, size_t k, double sum, double floor) {
    double med = ml_select(a, k, k / 2);
    if (k % 2 == 0) {
        /* the lower middle is the largest of the lower half */
        double lo = a[0];
        for (size_t i = 1; i < k / 2; i++)
            if (a[i] > lo) lo = a[i];
        med = 0.5 * (lo + med);
    }
    double s = 1.4826 * med;
    if (s <= floor) s = ml_select(a, k, (size_t)(0.9 * (double)(k - 1))) / 1.645;
    if (s <= floor) s = 1.2533 * sum / (double)k;
    return s > floor ? s : floor;
}

/* Start a frame: magic and version. */
static inline int ml_frame_begin(sm_buf *b, const char magic[4], uint8_t version) {
    int rc = sm_buf_append(b, magic, 4);
    return rc ? rc : sm_buf_put_u8(b, version);
}

/* Close a frame: append the CRC of everything so far. */
static inline int ml_frame_end(sm_buf *b) { return sm_buf_put_le32(b, sm_crc32c(0, b->p, b->len)); }

/* Check magic, version and CRC; on success r reads the body only. */
static inline int ml_frame_open(const uint8_t *buf, size_t len, const char magic[4], uint8_t version,
                                sm_rd *r, sm_error *err) {
    if (!buf || len < 9) return SM_CORRUPT(err, "model state too short (%zu bytes)", len);
    if (memcmp(buf, magic, 4) != 0) return SM_CORRUPT(err, "model state: bad magic");
    if (buf[4] != version) return SM_CORRUPT(err, "model state: unsupported version %u", buf[4]);
    if (sm_crc32c(0, buf, len - 4) != sm_load_le32(buf + len - 4))
        return SM_CORRUPT(err, "model state: checksum mismatch");
    sm_rd_init(r, buf + 5, len - 9);
    return 0;
}

#endif
