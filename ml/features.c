/* SPDX-License-Identifier: Apache-2.0
 *
 * features.c - univariate features and the residual score (features.h).
 * No state, no allocation except the sort scratch of ml_features_diff_scale.
 */
#include "ml/features.h"

#include <math.h>
#include <stdlib.h>

#include "ml/ml_int.h"
#include "tsdb/base/sm_alloc.h"

/* Clip, then round to ML_FEAT_RESOLUTION: differences below it are
 * floating-point noise (a flat series' residuals of 1e-15), and a forest
 * would otherwise cut on them as if they were structure. */
static double clip(double v) {
    v = v > ML_FEAT_CLIP ? ML_FEAT_CLIP : v < -ML_FEAT_CLIP ? -ML_FEAT_CLIP : v;
    return nearbyint(v / ML_FEAT_RESOLUTION) * ML_FEAT_RESOLUTION;
}

double ml_features_diff_scale(const double *y, size_t n) {
    double *d = n > 1 ? sm_malloc((n - 1) * sizeof *d) : NULL;
    size_t k = 0;
    double sum = 0.0, level = 0.0, prev = NAN;
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i])) continue;
        level += fabs(y[i]);
        if (!isnan(prev) && d) {
            d[k] = fabs(y[i] - prev);
            sum += d[k++];
        }
        prev = y[i];
    }
    double floor = 1e-9 * (n ? level / n : 0.0) + 1e-12, s = floor;
    if (k) {
        s = ml_robust_scale(d, k, sum, floor);
    }
    sm_free(d);
    return s;
}

void ml_features_point(double y, double y_prev, double expected, double scale, double diff_scale,
                       const double *z2_window, size_t w, double *out) {
    out[ML_FEAT_RESIDUAL] = clip((y - expected) / scale);
    out[ML_FEAT_CHANGE] = isnan(y_prev) ? 0.0 : clip((y - y_prev) / diff_scale);
    double s = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < w; i++)
        if (!isnan(z2_window[i])) {
            s += z2_window[i];
            k++;
        }
    out[ML_FEAT_SPREAD] = k ? clip(log(sqrt(s / k) + 1.0)) : 0.0;
}

void ml_features_batch(const double *y, const double *expected, size_t n, double scale, double diff_scale,
                       size_t w, double *out) {
    double prev = NAN, sum = 0.0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double *o = out + i * ML_FEAT_DIM;
        double z = (y[i] - expected[i]) / scale;
        o[ML_FEAT_RESIDUAL] = clip(z);
        o[ML_FEAT_CHANGE] = isnan(prev) || isnan(y[i]) ? 0.0 : clip((y[i] - prev) / diff_scale);
        if (!isnan(y[i])) prev = y[i];
        /* running sum of clipped z^2 over the last w points */
        if (!isnan(z)) {
            sum += o[ML_FEAT_RESIDUAL] * o[ML_FEAT_RESIDUAL];
            k++;
        }
        if (i >= w) {
            double zo = (y[i - w] - expected[i - w]) / scale;
            if (!isnan(zo)) {
                double c = clip(zo);
                sum -= c * c;
                k--;
            }
        }
        if (sum < 0) sum = 0;
        o[ML_FEAT_SPREAD] = k ? clip(log(sqrt(sum / k) + 1.0)) : 0.0;
        if (isnan(y[i])) o[ML_FEAT_RESIDUAL] = NAN;
    }
}

/* -log10 of the two-sided tail P(|N(0,1)| > z). */
static double neglog10_tail(double z) {
    z = fabs(z);
    if (z < 30.0) {
        double p = erfc(z / sqrt(2.0));
        if (p > 0) return -log10(p);
    }
    /* erfc(x) ~ exp(-x^2) / (x sqrt(pi)) for large x */
    double x = z / sqrt(2.0);
    return (x * x + log(x * sqrt(3.141592653589793))) / log(10.0);
}

double ml_features_residual_score(double z, double z_band) {
    if (isnan(z)) return 0.0;
    return 1.0 - exp2(-neglog10_tail(z) / neglog10_tail(z_band));
}
