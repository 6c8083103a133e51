/* SPDX-License-Identifier: Apache-2.0
 *
 * features.h - the univariate features every scorer of ml/ works from, all
 * in units of a robust scale so that they compare across series:
 *
 *   ML_FEAT_RESIDUAL  z = (y - expected) / scale        (baseline residual)
 *   ML_FEAT_CHANGE    dz = (y - y_prev) / diff_scale    (step since the last point)
 *   ML_FEAT_SPREAD    log(rms(z over the last w points) + 1)   (local spread)
 *
 * Residual and change are clipped at +-ML_FEAT_CLIP so that one huge value
 * does not stretch a forest's cuts, and every feature is rounded to
 * ML_FEAT_RESOLUTION so that floating-point noise is not structure.  The batch call works on arrays; the
 * streaming scorer (online.c) computes the same quantities one point at a
 * time with ml_features_point.  NaN inputs give NaN features, which callers
 * skip.
 */
#ifndef SEISMO_ML_FEATURES_H
#define SEISMO_ML_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#define ML_FEAT_RESIDUAL 0
#define ML_FEAT_CHANGE 1
#define ML_FEAT_SPREAD 2
#define ML_FEAT_DIM 3
/* Not a feature: what ml_online_point.driver_feature says when shape
 * novelty (shape.h) drove the score. */
#define ML_FEAT_SHAPE 3
#define ML_FEAT_CLIP 50.0
#define ML_FEAT_RESOLUTION 0.001

/* Robust scale of first differences of y (NaN skipped): the MAD-based
 * scale of ml/README.md ("Scales"), never 0. */
double ml_features_diff_scale(const double *y, size_t n);

/* Features of one point.  z2_window holds the last w squared residuals
 * (including this point's), w >= 1.  out (OUT) gets ML_FEAT_DIM values. */
void ml_features_point(double y, double y_prev, double expected, double scale, double diff_scale,
                       const double *z2_window, size_t w, double *out);

/* Features of n points (row-major n x ML_FEAT_DIM into out, OUT), with a
 * spread window of w points (w >= 1; the first rows use what they have). */
void ml_features_batch(const double *y, const double *expected, size_t n, double scale, double diff_scale,
                       size_t w, double *out);

/* The residual score of |z| in [0, 1): with L(z) = -log10 of the two-sided
 * normal tail probability of z, 1 - 2^(-L(z) / L(z_band)): 0.5 exactly at
 * the band's edge |z| = z_band, 0.75 where the tail is the band's squared,
 * and never saturating, so that larger surprises keep ranking higher. */
double ml_features_residual_score(double z, double z_band);

#endif
