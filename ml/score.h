/* SPDX-License-Identifier: Apache-2.0
 *
 * score.h - turning model outputs into the one anomaly score users see, in
 * [0, 1] with the documented threshold ML_SCORE_THRESHOLD (docs/ML.md):
 *
 *   residual score  ml_features_residual_score(z, z_band): 0.5 at the band
 *   forest score    calibrated against the forest's own training points:
 *                   ml_score_calibrate maps the raw 2^(-E[h]/c) to
 *                   1 - 2^-((raw - median) / (q995 - median)) (0 below the
 *                   training median, 0.5 at its 99.5th percentile)
 *   combined        the larger of the two (auto model, batch); the streaming
 *                   scorer takes their p-norm (online.h, combine_p)
 *   reported        ml_score_novelty: 0 unless the combined score is a new
 *                   high of the previous `horizon` points; then the combined
 *                   score minus half the old high.  An event reports once,
 *                   at its start (and again only if it gets worse), and a
 *                   stretch of equally odd points does not keep alarming:
 *                   the "suppress repeated alarms" rule, independent of
 *                   where a user puts the threshold.  A spike after a quiet
 *                   stretch (old high h ~ 0.3) keeps most of its score
 *   lifted          ml_score_lift (`seismo score --online`, after the
 *                   repeat suppression): a report below the threshold that
 *                   is larger than every report of the previous `horizon`
 *                   rows is lifted halfway to the threshold,
 *                   (r + ML_SCORE_THRESHOLD) / 2.  The series' largest event
 *                   in a long while then ranks above a repeat of a kind of
 *                   event it has already shown, which makes sub-threshold
 *                   scores comparable across series (a spiky series reports
 *                   often, a calm one rarely).  Scores at or above the
 *                   threshold are never changed, so what alarms at 0.5 is
 *                   the same with or without it.
 */
#ifndef SEISMO_ML_SCORE_H
#define SEISMO_ML_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb/base/sm_error.h"

#define ML_SCORE_THRESHOLD 0.5
/* The horizon `seismo score --online` gives its lifts (ml_score_lift). */
#define ML_SCORE_LIFT_HORIZON 1000

typedef struct ml_score_calib {
    double median; /* raw forest score of the median training point */
    double q995;   /* raw forest score at the 99.5th percentile */
} ml_score_calib;

/* Calibrate from n raw training scores (the array is reordered). */
void ml_score_calibrate(double *raw, size_t n, ml_score_calib *out);
/* A raw forest score through the calibration, in [0, 1]. */
double ml_score_forest(const ml_score_calib *c, double raw);

/* Repeat suppression: a ring of the last `horizon` combined scores. */
typedef struct ml_score_novelty {
    uint32_t horizon; /* points remembered (ring capacity) */
    uint32_t pos;     /* next slot */
    uint32_t filled;  /* slots in use, <= horizon */
    double *ring;     /* horizon combined scores, owned */
} ml_score_novelty;

int ml_score_novelty_init(ml_score_novelty *s, uint32_t horizon, sm_error *err);
void ml_score_novelty_fini(ml_score_novelty *s);
/* The reported score of a point whose combined score is `combined`; then
 * remembers it. */
double ml_score_novelty_next(ml_score_novelty *s, double combined);

/* The lift: a ring of the last `horizon` reported scores and their
 * maximum.  horizon 0 passes every score through. */
typedef struct ml_score_lift {
    ml_score_novelty past; /* the last `horizon` reported scores: the same
                              ring as repeat suppression keeps, owned */
    double top;            /* largest score in the ring (0 when empty) */
} ml_score_lift;

int ml_score_lift_init(ml_score_lift *s, uint32_t horizon, sm_error *err);
void ml_score_lift_fini(ml_score_lift *s);
/* The lifted score of a row whose reported score (in [0, 1]) is
 * `reported`; then remembers `reported` (not the lifted value).  NaN
 * counts as 0. */
double ml_score_lift_next(ml_score_lift *s, double reported);

#endif
