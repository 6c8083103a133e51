/* SPDX-License-Identifier: Apache-2.0
 *
 * baseline.h - dynamic seasonal baselines for many series that share
 * timestamps, fitted as one dense problem.
 *
 * Model of series j at time t (ml/README.md, "Baseline"):
 *
 *   y_j(t) = b0 + b1 u(t) + sum_k [a_k sin(2 pi k t/day) + c_k cos(..)]   (daily, k <= Kd)
 *                         + sum_k [e_k sin(2 pi k t/week) + f_k cos(..)]  (weekly, k <= Kw)
 *
 * u is time scaled to [-1, 0] over the fitted window.  Which seasonal blocks
 * a series gets is detected per series (BIC between the four nested models,
 * plus a minimum share of explained variance) unless forced.  The fit is a
 * Huber M-estimate by iterated least squares on winsorised pseudo-
 * observations, with exponential forgetting weights shared by every series,
 * so that all series are solved by one GEMM (X^T W Y) corrected at the
 * clipped points per iteration and one small Cholesky factorisation (LAPACK)
 * for all of them.  Large fits run on several threads; the result does not
 * depend on how many.  The residual scale
 * is a MAD; the band is expected +- z * scale.
 *
 * Missing values (NaN, including Prometheus stale markers) are imputed by
 * the current fit, which gives them zero weight in the solution.
 *
 * Timestamps are sm_ms_t, non-decreasing; values are column-major: series j
 * is y[j*ldy .. j*ldy + n).
 */
#ifndef SEISMO_ML_BASELINE_H
#define SEISMO_ML_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

#define ML_SEASON_DAILY 1u
#define ML_SEASON_WEEKLY 2u
#define ML_SEASON_AUTO 0xffu /* detect per series */

#define ML_DAY_MS 86400000LL
#define ML_WEEK_MS (7 * ML_DAY_MS)
/* Robust reweighting rounds beyond this gain nothing measurable (two are the
 * default) and would let a decoded model state make each refit unbounded
 * (fuzz_ml_model found a state asking for 2^32 rounds). */
#define ML_BASELINE_MAX_ITERATIONS 16

typedef struct ml_baseline_opts {
    uint32_t seasons;          /* ML_SEASON_AUTO (default) or a mask to force */
    uint32_t daily_harmonics;  /* Kd, default 6 */
    uint32_t weekly_harmonics; /* Kw, default 3 (must stay below 7) */
    bool trend;                /* fit b1 (default true) */
    double halflife_ms;        /* forgetting half-life; 0 = none; default 7 days */
    double huber_k;            /* clip residuals at k * scale; default 2.0 */
    uint32_t iterations;       /* robust reweighting rounds; default 2, at most
                                * ML_BASELINE_MAX_ITERATIONS */
    double min_gain;           /* seasonality must explain this share of the
                                  non-seasonal residual variance; default 0.05 */
    double z;                  /* band half-width in scales; default 4.0 */
} ml_baseline_opts;

typedef struct ml_baseline ml_baseline_t;

void ml_baseline_opts_default(ml_baseline_opts *o);

/* Fit m series over n shared timestamps t.  *out (OUT) owns the fit; free
 * with ml_baseline_free.  SM_EINVAL if n == 0, m == 0, ldy < n or t
 * decreases. */
int ml_baseline_fit(const sm_ms_t *t, size_t n, const double *y, size_t m, size_t ldy,
                    const ml_baseline_opts *o, ml_baseline_t **out, sm_error *err);
void ml_baseline_free(ml_baseline_t *b);

size_t ml_baseline_series(const ml_baseline_t *b);
/* Seasonal blocks chosen for series j (ML_SEASON_* mask). */
uint32_t ml_baseline_seasons(const ml_baseline_t *b, size_t j);
/* Robust residual scale of series j (>= a small floor, never 0). */
double ml_baseline_scale(const ml_baseline_t *b, size_t j);
/* Observed (non-NaN) points of series j used by the fit. */
size_t ml_baseline_count(const ml_baseline_t *b, size_t j);

/* Expected value and band of series j at t (OUT: expected, lower, upper;
 * any may be NULL).  Past the fitted window the trend is held at its value
 * at the window's end (no extrapolation).  A series with no observation
 * gives NaN. */
void ml_baseline_predict(const ml_baseline_t *b, size_t j, sm_ms_t t, double *expected, double *lower,
                         double *upper);

/* Serialise the fit of every series (*buf OUT, sm_malloc'd, the caller
 * frees it with sm_free) / decode it back (*out untouched on failure).
 * Format: docs/ML.md, "Baseline state". */
int ml_baseline_encode(const ml_baseline_t *b, uint8_t **buf, size_t *len, sm_error *err);
int ml_baseline_decode(const uint8_t *buf, size_t len, ml_baseline_t **out, sm_error *err);

#endif
