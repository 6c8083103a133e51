/* SPDX-License-Identifier: Apache-2.0
 *
 * online.h - the streaming scorer: k series that arrive together (k = 1 for
 * one series, k > 1 for a vector of series that share labels), scored one
 * timestamp at a time from the past only, and then learning from that
 * point.  This is what `seismo score --online` runs and what continuous
 * rules will run; ml/README.md, "Online mode", explains the schedule.
 *
 * ml_online_step(t, v) does, in this order:
 *   1. predict: expected_j(t) = baseline_j(t) + level correction_j, band
 *      expected +- z * scale_j, from the state before t (or, for a series
 *      whose days repeat more exactly than the harmonics can draw them,
 *      the median of its values at the same time on the previous days:
 *      the seasonal-naive mode, chosen at each baseline refit);
 *   2. score: features of v against that prediction, the residual score,
 *      the forest score, their combination and repeat suppression;
 *      and shape novelty (shape.h), which learns as it scores;
 *   3. learn: push v into the history, update the level corrections, refit
 *      the baseline and the forest when they are due.
 * So the output for row i depends on rows 0..i only (invariant 1; tested).
 *
 * NaN values (missing points, Prometheus stale markers) are scored 0, are
 * kept as gaps in the history and never update the level or the features.
 * Timestamps must not decrease (SM_EINVAL).  The state encodes to a
 * versioned byte string (docs/ML.md, "Online state") that decodes into a
 * scorer that continues exactly as the original would have.
 */
#ifndef SEISMO_ML_ONLINE_H
#define SEISMO_ML_ONLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ml/baseline.h"
#include "ml/iforest.h"
#include "tsdb/base/sm_error.h"
#include "tsdb/base/sm_types.h"

typedef enum ml_model_kind {
    ML_MODEL_AUTO = 0,     /* residual score and forest over residual features */
    ML_MODEL_BASELINE = 1, /* residual score only */
    ML_MODEL_IFOREST = 2,  /* forest over features of the raw values only */
} ml_model_kind;

typedef struct ml_online_opts {
    uint32_t series;          /* k, >= 1 */
    ml_model_kind model;
    uint32_t history;         /* points kept per series for refits; default 4096 */
    uint32_t refit_every;     /* rows between baseline refits; default 256 */
    uint32_t warmup;          /* rows scored 0 at the start; default 64 */
    uint32_t spread_window;   /* points in the local spread; default 12 */
    uint32_t feature_history; /* feature rows the forest trains on; default 2048 */
    uint32_t forest_every;    /* rows between forest refits; default 512 */
    uint32_t novelty_horizon; /* rows of repeat suppression; 0 = off; default 100 */
    double level_alpha;       /* level-correction smoothing; default 0.02 */
    double seasonal_ratio;    /* a series is compared with its own past days instead of
                               * the harmonic baseline when that band is below this share
                               * of the harmonic band (ml/README.md, "Online mode");
                               * 0 = never, at most 1; default 0.5 */
    uint32_t seasonal_lags;   /* days in the seasonal median, 1..3; default 3 */
    uint32_t shape_history;   /* levels (of 4 rows each) shape novelty compares with, 17..2^20;
                               * 0 = off; default 2048 (auto model only; shape.h) */
    double shape_weight;      /* its weight in the reported score, in [0, 1]; 0 = off; default 0.5 */
    double combine_p;         /* the auto model's residual score r and forest score f combine
                               * as (r^p + f^p)^(1/p), capped at 1: two moderate scores that
                               * agree count for more than either; 0 = max(r, f); else 1..64;
                               * default 4.5 */
    ml_baseline_opts baseline;
    ml_iforest_opts forest;   /* forest.seed seeds every refit */
} ml_online_opts;

/* One scored row.  The per-series expected values and bands go to the
 * arrays passed to ml_online_step. */
typedef struct ml_online_point {
    double score;           /* reported score in [0, 1]; see score.h */
    double combined;        /* before repeat suppression */
    double residual_score;  /* largest residual score over the series */
    double forest_score;    /* calibrated forest score, 0 without a forest */
    double shape_score;     /* weighted shape novelty after its repeat suppression, 0 when off */
    uint32_t driver_series; /* which series drove the score */
    uint32_t driver_feature;/* ML_FEAT_* of features.h that drove it */
} ml_online_point;

typedef struct ml_online ml_online_t;

void ml_online_opts_default(ml_online_opts *o);
int ml_online_new(const ml_online_opts *o, ml_online_t **out, sm_error *err);
void ml_online_free(ml_online_t *s);

/* Score the row (t, v[0..k)) from the past, then learn from it.  expected,
 * lower, upper (OUT, k entries each, may be NULL) get the prediction the
 * row was compared with (NaN before the first fit). */
int ml_online_step(ml_online_t *s, sm_ms_t t, const double *v, double *expected, double *lower,
                   double *upper, ml_online_point *out, sm_error *err);

/* Rows stepped so far. */
uint64_t ml_online_rows(const ml_online_t *s);

/* Persist / restore the whole state (*buf OUT sm_malloc'd, caller frees;
 * *out untouched on failure). */
int ml_online_encode(const ml_online_t *s, uint8_t **buf, size_t *len, sm_error *err);
int ml_online_decode(const uint8_t *buf, size_t len, ml_online_t **out, sm_error *err);

#endif
