/* SPDX-License-Identifier: Apache-2.0
 *
 * nab_score.h - the scoring of the Numenta Anomaly Benchmark, reimplemented
 * from the prose in $SEISMO_SHARED_DIR/datasets/nab/SCORING.md (which reads
 * NAB's sweeper.py, optimizer.py and runner.py at commit ea702d75).  Pure
 * arithmetic over arrays: no files, no CSV, no detector.  bench/nab.c is the
 * harness that feeds it; bench/NAB.md says how to run that.
 *
 * A corpus holds files; each file is its detector scores (one per row, in
 * [0, 1]) and its label windows as inclusive row-index ranges.  Adding a file
 * computes every row's unweighted sweep weight once:
 *
 *   S(y) = 2 / (1 + e^(5y)) - 1, and exactly -1 when y > 3.
 *   in window [L, R] of width W:  y = -(R - i + 1) / W, row weight
 *                                 A_TP * S(y) / S(-1)  (A_TP on row L);
 *   after a window [L', R'], W':  y = |R' - i| / (W' - 1), weight A_FP * S(y);
 *   before the first window:      weight -A_FP.
 *   rows i < P = min(floor(0.15 N), 750) are probationary and never scored.
 *
 * At threshold t a row is a detection iff its score >= t.  A window earns
 * the largest weight among its detections, or -A_FN without one; every
 * detection outside windows adds its (negative) weight; the raw score is the
 * sum.  nab_score_corpus_optimise() is NAB's protocol: ONE threshold per
 * profile for the whole corpus, found by sweeping down through every distinct
 * score of all files at once (start above 1.0, ties to the higher
 * threshold).  nab_score_normalise() maps raw scores to NAB's scale, where
 * the null detector is 0 and the perfect one 100.
 *
 * Not here: building windows from raw labels (combined_windows.json already
 * holds them), per-file thresholds (NAB has none), and reading NAB's files.
 */
#ifndef SEISMO_BENCH_NAB_SCORE_H
#define SEISMO_BENCH_NAB_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"

/* Where the optimiser starts: above every score, so nothing is detected. */
#define NAB_SCORE_THRESHOLD_START 1.1

typedef struct nab_score_profile {
    const char *name;  /* "standard", "reward_low_FP_rate", ... (not owned) */
    double tp_weight;  /* A_TP */
    double fp_weight;  /* A_FP, a positive magnitude applied with a minus sign */
    double fn_weight;  /* A_FN, a positive magnitude */
} nab_score_profile_t;

/* A label window as row indices into its file, both inclusive. */
typedef struct nab_score_window {
    size_t first, last;
} nab_score_window_t;

/* One file's or one group's result at a threshold. */
typedef struct nab_score_result {
    double raw;               /* NAB raw score: tp_credit - fn_cost - fp_cost */
    double tp_credit;         /* sum of the best weight of each detected window */
    double fn_cost;           /* A_FN times missed windows (>= 0) */
    double fp_cost;           /* minus the sum of false-positive weights (>= 0) */
    int64_t windows;          /* windows scored (with a row past probation) */
    int64_t windows_detected; /* of those, windows with at least one detection */
    int64_t tp_rows, fp_rows, tn_rows, fn_rows; /* NAB's row counts past probation */
} nab_score_result_t;

/* S(y) above. */
double nab_score_sigmoid(double y);

/* P for a file of n rows: rows 0 .. P-1 are probationary. */
size_t nab_score_probation_rows(size_t n);

/* 100 * (raw - null) / (perfect - null) with perfect = windows * A_TP and
 * null = -windows * A_FN; NaN when windows is 0 (nothing to normalise by). */
double nab_score_normalise(double raw, int64_t windows, const nab_score_profile_t *p);

/* Accumulate r into acc (raw, costs and counts add). */
void nab_score_result_add(nab_score_result_t *acc, const nab_score_result_t *r);

typedef struct nab_score_corpus nab_score_corpus_t;

/* An empty corpus, or NULL when out of memory.  Free with
 * nab_score_corpus_free (NULL is a no-op). */
nab_score_corpus_t *nab_score_corpus_new(void);
void nab_score_corpus_free(nab_score_corpus_t *c);

/* Add one file: n scores (copied) and nwin windows, sorted, disjoint, within
 * [0, n), each wider than one row (NAB divides by W - 1).  Returns the file's
 * index (>= 0), or SM_EINVAL for a score outside [0, 1] or NaN and for bad
 * windows, SM_ENOMEM; on failure the corpus is unchanged. */
int nab_score_corpus_add_file(nab_score_corpus_t *c, const double *scores, size_t n,
                              const nab_score_window_t *win, size_t nwin, sm_error *err);

size_t nab_score_corpus_files(const nab_score_corpus_t *c);
/* Windows scored over the whole corpus (those with a row past probation). */
int64_t nab_score_corpus_windows(const nab_score_corpus_t *c);

/* NAB's threshold optimisation for profile p over every file at once.
 * OUT: threshold (NAB_SCORE_THRESHOLD_START when never alarming is best),
 * raw (the corpus raw score there).  Returns 0 or SM_ENOMEM. */
int nab_score_corpus_optimise(const nab_score_corpus_t *c, const nab_score_profile_t *p,
                              double *threshold, double *raw, sm_error *err);

/* File `file`'s result at `threshold` (detections: score >= threshold).
 * Returns 0, or SM_EINVAL for a bad file index, SM_ENOMEM.  OUT: r. */
int nab_score_corpus_eval_file(const nab_score_corpus_t *c, size_t file,
                               const nab_score_profile_t *p, double threshold,
                               nab_score_result_t *r, sm_error *err);

#endif
