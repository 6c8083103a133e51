/* SPDX-License-Identifier: Apache-2.0
 *
 * score.c - forest-score calibration, repeat suppression and the lift
 * (score.h).
 */
#include "ml/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_int.h"
#include "tsdb/base/sm_alloc.h"

void ml_score_calibrate(double *raw, size_t n, ml_score_calib *out) {
    if (n == 0) {
        out->median = 0.5;
        out->q995 = 0.75;
        return;
    }
    qsort(raw, n, sizeof *raw, ml_cmp_double);
    out->median = raw[n / 2];
    size_t q = (size_t)floor(0.995 * (double)(n - 1));
    out->q995 = raw[q];
    /* a degenerate training set (all points alike) still needs a slope */
    if (out->q995 < out->median + 0.02) out->q995 = out->median + 0.02;
}

double ml_score_forest(const ml_score_calib *c, double raw) {
    if (isnan(raw)) return 0.0;
    if (raw <= c->median) return 0.0;
    return 1.0 - exp2(-(raw - c->median) / (c->q995 - c->median));
}

int ml_score_novelty_init(ml_score_novelty *s, uint32_t horizon, sm_error *err) {
    memset(s, 0, sizeof *s);
    s->horizon = horizon;
    if (horizon == 0) return 0;
    s->ring = sm_calloc(horizon, sizeof *s->ring);
    if (!s->ring) return SM_ERR(err, SM_ENOMEM, "score: no memory for a %u-point ring", horizon);
    return 0;
}

void ml_score_novelty_fini(ml_score_novelty *s) {
    sm_free(s->ring);
    s->ring = NULL;
}

/* Put x into the ring, over its oldest value once the ring is full. */
static void ring_push(ml_score_novelty *s, double x) {
    s->ring[s->pos] = x;
    s->pos = (s->pos + 1) % s->horizon;
    if (s->filled < s->horizon) s->filled++;
}

double ml_score_novelty_next(ml_score_novelty *s, double combined) {
    if (s->horizon == 0) return combined;
    double mx = 0.0;
    for (uint32_t i = 0; i < s->filled; i++)
        if (s->ring[i] > mx) mx = s->ring[i];
    ring_push(s, combined);
    /* only a new high of the horizon reports, less half the old high */
    return combined > mx ? combined - 0.5 * mx : 0.0;
}

int ml_score_lift_init(ml_score_lift *s, uint32_t horizon, sm_error *err) {
    s->top = 0.0;
    return ml_score_novelty_init(&s->past, horizon, err);
}

void ml_score_lift_fini(ml_score_lift *s) { ml_score_novelty_fini(&s->past); }

double ml_score_lift_next(ml_score_lift *s, double reported) {
    ml_score_novelty *p = &s->past;
    double r = isnan(reported) ? 0.0 : reported;
    if (p->horizon == 0) return r;
    double out = r > 0 && r > s->top && r < ML_SCORE_THRESHOLD ? 0.5 * (r + ML_SCORE_THRESHOLD) : r;
    double old = p->filled == p->horizon ? p->ring[p->pos] : 0.0;
    ring_push(p, r);
    /* the top only needs a rescan when the value that left was the top;
     * most reports are 0, so that is rare */
    if (r >= s->top) {
        s->top = r;
    } else if (old >= s->top) {
        s->top = 0.0;
        for (uint32_t i = 0; i < p->filled; i++)
            if (p->ring[i] > s->top) s->top = p->ring[i];
    }
    return out;
}
