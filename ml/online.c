/* SPDX-License-Identifier: Apache-2.0
 *
 * online.c - the streaming scorer (online.h; schedule and rationale in
 * ml/README.md, "Online mode"; byte format of the state in docs/ML.md,
 * "Online state").
 *
 * State, per scorer of k series:
 *   history ring      the last `history` timestamps and values (NaN kept),
 *                     what the baseline is refitted on
 *   baseline          ml_baseline fit of the ring at the last refit
 *   corr[j]           level correction: an EWMA of the residual against the
 *                     baseline, with each innovation clipped at huber_k
 *                     scales, so a lasting shift is absorbed in about
 *                     shift / (alpha * k * scale) rows, a spike barely moves it
 *   z2 ring           the last spread_window squared clipped residuals
 *   feature ring      the last feature_history feature rows (3k wide),
 *                     what the forest is refitted on
 *   forest, calib     the forest and its calibration (score.h)
 *   novelty ring      repeat suppression (score.h)
 *
 * Invariant 1: ml_online_step reads the state, produces its output, and only
 * then changes the state; nothing in the output of a row depends on a later
 * row.  Invariant 2: every refit is a pure function of the rings and of
 * (forest.seed + number of forest fits so far), so a decoded state continues
 * bit for bit like the original.
 */
#include "ml/online.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/features.h"
#include "ml/ml_int.h"
#include "ml/score.h"
#include "tsdb/base/sm_alloc.h"

#define ON_MAGIC "SMON"
#define ON_VERSION 1
#define FIRST_REFIT 16
#define MIN_FOREST_ROWS 128
#define MAX_SERIES 1024u
#define MAX_RING (1u << 22)

struct ml_online {
    ml_online_opts o;
    uint32_t k, dim;        /* series; feature width 3k */
    uint64_t rows;          /* rows stepped */
    uint64_t next_refit, next_forest, forest_fits;
    sm_ms_t last_t;         /* timestamp of the last row (rows > 0) */
    uint32_t hpos, hlen;    /* history ring: next slot, entries */
    sm_ms_t *ht;            /* history timestamps */
    double *hv;             /* k x history, series-major */
    uint32_t zpos, zlen;    /* z2 ring */
    double *z2;             /* k x spread_window, series-major */
    uint32_t fpos, flen;    /* feature ring */
    double *fr;             /* feature_history x dim, row-major */
    double *corr, *dscale, *prev, *hmed, *hscale; /* k each */
    ml_baseline_t *bl;      /* NULL before the first refit */
    ml_iforest_t *forest;   /* NULL before the first forest fit */
    ml_score_calib calib;
    ml_score_novelty nov;
    double *scratch;        /* dim + spread_window doubles */
};

void ml_online_opts_default(ml_online_opts *o) {
    memset(o, 0, sizeof *o);
    o->series = 1;
    o->model = ML_MODEL_AUTO;
    o->history = 4096;
    o->refit_every = 256;
    o->warmup = 64;
    o->spread_window = 12;
    o->feature_history = 2048;
    o->forest_every = 512;
    o->novelty_horizon = 288;
    o->level_alpha = 0.02;
    ml_baseline_opts_default(&o->baseline);
    o->baseline.halflife_ms = 3.0 * ML_DAY_MS;
    ml_iforest_opts_default(&o->forest);
}

void ml_online_free(ml_online_t *s) {
    if (!s) return;
    sm_free(s->ht);
    sm_free(s->hv);
    sm_free(s->z2);
    sm_free(s->fr);
    sm_free(s->corr);
    sm_free(s->dscale);
    sm_free(s->prev);
    sm_free(s->hmed);
    sm_free(s->hscale);
    sm_free(s->scratch);
    ml_baseline_free(s->bl);
    ml_iforest_free(s->forest);
    ml_score_novelty_fini(&s->nov);
    sm_free(s);
}

uint64_t ml_online_rows(const ml_online_t *s) { return s->rows; }

static int check_opts(const ml_online_opts *o, sm_error *err) {
    if (o->series < 1 || o->series > MAX_SERIES)
        return SM_ERR(err, SM_EINVAL, "online: series must be 1..%u", MAX_SERIES);
    if (o->model > ML_MODEL_IFOREST) return SM_ERR(err, SM_EINVAL, "online: unknown model %d", (int)o->model);
    if (o->history < FIRST_REFIT || o->history > MAX_RING || o->refit_every < 1 || o->spread_window < 1 ||
        o->spread_window > 4096 || o->feature_history < MIN_FOREST_ROWS || o->feature_history > MAX_RING ||
        o->forest_every < 1 || o->novelty_horizon > 1u << 20)
        return SM_ERR(err, SM_EINVAL, "online: history >= %d, feature_history >= %d, windows >= 1",
                      FIRST_REFIT, MIN_FOREST_ROWS);
    if (!(o->level_alpha >= 0 && o->level_alpha <= 1))
        return SM_ERR(err, SM_EINVAL, "online: level_alpha must be in [0, 1]");
    if (!(o->baseline.huber_k > 0) || o->baseline.weekly_harmonics >= 7 || o->baseline.daily_harmonics > 24 ||
        !(o->baseline.halflife_ms >= 0) || !(o->baseline.z > 0))
        return SM_ERR(err, SM_EINVAL, "online: bad baseline options");
    if (o->forest.trees < 1 || o->forest.trees > 100000 || o->forest.subsample < 1 || o->forest.max_depth > 64)
        return SM_ERR(err, SM_EINVAL, "online: bad forest options");
    if (o->forest.extended && o->forest.extension != UINT32_MAX && o->forest.extension >= 3 * o->series)
        return SM_ERR(err, SM_EINVAL, "online: forest extension must be below the feature width");
    return 0;
}

/* Allocate a zeroed state for valid options. */
static ml_online_t *alloc_state(const ml_online_opts *o) {
    ml_online_t *s = sm_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->o = *o;
    s->k = o->series;
    s->dim = ML_FEAT_DIM * s->k;
    s->next_refit = FIRST_REFIT;
    s->ht = sm_malloc((size_t)o->history * sizeof *s->ht);
    s->hv = sm_malloc((size_t)o->history * s->k * sizeof *s->hv);
    s->z2 = sm_malloc((size_t)o->spread_window * s->k * sizeof *s->z2);
    s->fr = sm_malloc((size_t)o->feature_history * s->dim * sizeof *s->fr);
    s->corr = sm_calloc(s->k, sizeof(double));
    s->dscale = sm_calloc(s->k, sizeof(double));
    s->prev = sm_malloc(s->k * sizeof(double));
    s->hmed = sm_calloc(s->k, sizeof(double));
    s->hscale = sm_calloc(s->k, sizeof(double));
    s->scratch = sm_malloc((s->dim + o->spread_window) * sizeof(double));
    if (!s->ht || !s->hv || !s->z2 || !s->fr || !s->corr || !s->dscale || !s->prev || !s->hmed || !s->hscale ||
        !s->scratch || ml_score_novelty_init(&s->nov, o->novelty_horizon, NULL)) {
        ml_online_free(s);
        return NULL;
    }
    for (uint32_t j = 0; j < s->k; j++) s->prev[j] = NAN;
    s->calib.median = 0.5;
    s->calib.q995 = 0.75;
    return s;
}

int ml_online_new(const ml_online_opts *o, ml_online_t **out, sm_error *err) {
    ml_online_opts def;
    if (!o) {
        ml_online_opts_default(&def);
        o = &def;
    }
    int rc = check_opts(o, err);
    if (rc) return rc;
    ml_online_t *s = alloc_state(o);
    if (!s) return SM_ERR(err, SM_ENOMEM, "online: out of memory");
    *out = s;
    return 0;
}

/* ---- refits ---- */

/* Median and robust scale of the non-NaN values of v[0..n) (reorders a
 * copy in tmp). */
static void median_scale(const double *v, size_t n, double *tmp, double *med, double *scale) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) tmp[k++] = v[i];
    if (!k) {
        *med = 0.0;
        *scale = 1.0;
        return;
    }
    qsort(tmp, k, sizeof *tmp, ml_cmp_double);
    double m = tmp[k / 2], level = fabs(m);
    for (size_t i = 0; i < k; i++) tmp[i] = fabs(tmp[i] - m);
    qsort(tmp, k, sizeof *tmp, ml_cmp_double);
    double s = 1.4826 * tmp[k / 2];
    double floor = 1e-9 * level + 1e-12;
    *med = m;
    *scale = s > floor ? s : (tmp[k - 1] > floor ? tmp[k - 1] : floor);
}

static double innovation(const ml_online_t *s, uint32_t j, double r) {
    double lim = s->o.baseline.huber_k * ml_baseline_scale(s->bl, j), d = r - s->corr[j];
    if (!(lim > 0)) return 0.0;
    return d > lim ? lim : d < -lim ? -lim : d;
}

static int refit_baseline(ml_online_t *s, sm_error *err) {
    uint32_t n = s->hlen, H = s->o.history, k = s->k;
    sm_ms_t *t = sm_malloc((size_t)n * sizeof *t);
    double *y = sm_malloc((size_t)n * k * sizeof *y), *tmp = sm_malloc((size_t)n * sizeof *tmp);
    int rc = SM_ENOMEM;
    if (!t || !y || !tmp) {
        SM_ERR(err, rc, "online: out of memory for a refit");
        goto done;
    }
    uint32_t first = (s->hpos + H - n) % H;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (first + i) % H;
        t[i] = s->ht[slot];
        for (uint32_t j = 0; j < k; j++) y[(size_t)j * n + i] = s->hv[(size_t)j * H + slot];
    }
    ml_baseline_t *nb;
    if ((rc = ml_baseline_fit(t, n, y, k, n, &s->o.baseline, &nb, err))) goto done;
    ml_baseline_free(s->bl);
    s->bl = nb;
    /* replay the level correction over the recent rows against the new fit */
    uint32_t replay = s->o.level_alpha > 0 ? (uint32_t)ceil(3.0 / s->o.level_alpha) : 0;
    if (replay > n) replay = n;
    for (uint32_t j = 0; j < k; j++) {
        const double *yj = y + (size_t)j * n;
        s->dscale[j] = ml_features_diff_scale(yj, n);
        median_scale(yj, n, tmp, &s->hmed[j], &s->hscale[j]);
        s->corr[j] = 0.0;
        for (uint32_t i = n - replay; i < n; i++) {
            if (isnan(yj[i])) continue;
            double e;
            ml_baseline_predict(s->bl, j, t[i], &e, NULL, NULL);
            if (!isnan(e)) s->corr[j] += s->o.level_alpha * innovation(s, j, yj[i] - e);
        }
    }
done:
    sm_free(t);
    sm_free(y);
    sm_free(tmp);
    return rc;
}

static int refit_forest(ml_online_t *s, sm_error *err) {
    uint32_t n = s->flen, F = s->o.feature_history, dim = s->dim;
    double *x = sm_malloc((size_t)n * dim * sizeof *x), *sc = sm_malloc((size_t)n * sizeof *sc);
    int rc = SM_ENOMEM;
    if (!x || !sc) {
        SM_ERR(err, rc, "online: out of memory for a forest refit");
        goto done;
    }
    uint32_t first = (s->fpos + F - n) % F;
    for (uint32_t i = 0; i < n; i++)
        memcpy(x + (size_t)i * dim, s->fr + (size_t)((first + i) % F) * dim, dim * sizeof *x);
    ml_iforest_opts fo = s->o.forest;
    fo.seed = s->o.forest.seed + s->forest_fits;
    ml_iforest_t *f;
    if ((rc = ml_iforest_fit(x, n, dim, &fo, &f, err))) goto done;
    if ((rc = ml_iforest_score(f, x, n, sc, err))) {
        ml_iforest_free(f);
        goto done;
    }
    ml_score_calibrate(sc, n, &s->calib);
    ml_iforest_free(s->forest);
    s->forest = f;
    s->forest_fits++;
done:
    sm_free(x);
    sm_free(sc);
    return rc;
}

/* ---- stepping ---- */

int ml_online_step(ml_online_t *s, sm_ms_t t, const double *v, double *expected, double *lower,
                   double *upper, ml_online_point *out, sm_error *err) {
    if (s->rows > 0 && t < s->last_t)
        return SM_ERR(err, SM_EINVAL, "online: timestamp %lld is before the previous one (%lld)", (long long)t,
                      (long long)s->last_t);
    const ml_online_opts *o = &s->o;
    uint32_t k = s->k, W = o->spread_window;
    double *feat = s->scratch, *win = s->scratch + s->dim;
    bool fitted = s->bl != NULL, any = false, scoring = fitted && s->rows >= o->warmup;
    double best_res = 0.0;
    uint32_t best_j = 0;
    double zs[MAX_SERIES];

    /* 1. predict and 2. features, from the state before t */
    for (uint32_t j = 0; j < k; j++) {
        double e = NAN, lo = NAN, hi = NAN, sc = NAN;
        if (fitted) {
            ml_baseline_predict(s->bl, j, t, &e, &lo, &hi);
            e += s->corr[j];
            lo += s->corr[j];
            hi += s->corr[j];
            sc = ml_baseline_scale(s->bl, j);
        }
        if (expected) expected[j] = e;
        if (lower) lower[j] = lo;
        if (upper) upper[j] = hi;
        double *fj = feat + (size_t)j * ML_FEAT_DIM;
        zs[j] = NAN;
        if (isnan(v[j]) || !fitted || isnan(e)) {
            fj[0] = fj[1] = fj[2] = 0.0;
            continue;
        }
        any = true;
        double ref = e, rs = sc;
        if (o->model == ML_MODEL_IFOREST) {
            ref = s->hmed[j];
            rs = s->hscale[j];
        }
        double z = (v[j] - ref) / rs, zc = z > ML_FEAT_CLIP ? ML_FEAT_CLIP : z < -ML_FEAT_CLIP ? -ML_FEAT_CLIP : z;
        zs[j] = zc;
        const double *ring = s->z2 + (size_t)j * W;
        /* the window as it will be once this point is pushed: slot zpos
         * holds the oldest entry (or is the next free one) */
        for (uint32_t i = 0; i < W; i++) win[i] = i < s->zlen ? ring[i] : NAN;
        win[s->zpos] = zc * zc;
        ml_features_point(v[j], s->prev[j], ref, rs, s->dscale[j], win, W, fj);
        if (o->model != ML_MODEL_IFOREST) {
            double r = ml_features_residual_score((v[j] - e) / sc, o->baseline.z);
            if (r > best_res) {
                best_res = r;
                best_j = j;
            }
        }
    }
    double fscore = 0.0;
    if (s->forest && any && o->model != ML_MODEL_BASELINE)
        fscore = ml_score_forest(&s->calib, ml_iforest_score_ref(s->forest, feat));
    double combined = o->model == ML_MODEL_BASELINE ? best_res
                      : o->model == ML_MODEL_IFOREST ? fscore
                      : (best_res > fscore ? best_res : fscore);
    if (!scoring || !any) combined = 0.0;
    ml_online_point pt = {0};
    pt.combined = combined;
    pt.residual_score = scoring ? best_res : 0.0;
    pt.forest_score = scoring ? fscore : 0.0;
    pt.score = ml_score_novelty_next(&s->nov, combined);
    if (fscore > best_res && s->forest) {
        size_t d = ml_iforest_explain(s->forest, feat);
        pt.driver_series = (uint32_t)(d / ML_FEAT_DIM);
        pt.driver_feature = (uint32_t)(d % ML_FEAT_DIM);
    } else {
        pt.driver_series = best_j;
        pt.driver_feature = ML_FEAT_RESIDUAL;
    }
    if (out) *out = pt;

    /* 3. learn */
    for (uint32_t j = 0; j < k; j++) {
        if (!isnan(v[j])) {
            if (fitted && !isnan(zs[j]) && o->level_alpha > 0) {
                double e;
                ml_baseline_predict(s->bl, j, t, &e, NULL, NULL);
                s->corr[j] += o->level_alpha * innovation(s, j, v[j] - e);
            }
            s->prev[j] = v[j];
        }
        s->z2[(size_t)j * W + s->zpos] = isnan(zs[j]) ? NAN : zs[j] * zs[j];
        s->hv[(size_t)j * o->history + s->hpos] = v[j];
    }
    s->zpos = (s->zpos + 1) % W;
    if (s->zlen < W) s->zlen++;
    s->ht[s->hpos] = t;
    s->hpos = (s->hpos + 1) % o->history;
    if (s->hlen < o->history) s->hlen++;
    if (any) {
        memcpy(s->fr + (size_t)s->fpos * s->dim, feat, s->dim * sizeof *feat);
        s->fpos = (s->fpos + 1) % o->feature_history;
        if (s->flen < o->feature_history) s->flen++;
    }
    s->rows++;
    s->last_t = t;
    int rc = 0;
    if (s->rows >= s->next_refit) {
        s->next_refit = s->next_refit < o->refit_every ? s->next_refit * 2 : s->next_refit + o->refit_every;
        if ((rc = refit_baseline(s, err))) return rc;
    }
    if (o->model != ML_MODEL_BASELINE && s->flen >= MIN_FOREST_ROWS && s->rows >= s->next_forest) {
        s->next_forest = s->rows + o->forest_every;
        if ((rc = refit_forest(s, err))) return rc;
    }
    return 0;
}
