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
 *   shape[j]          shape novelty of series j (shape.h), with its own
 *                     suppression ring shape_nov; the largest over the
 *                     series, times shape_weight, is max-combined with the
 *                     suppressed score (auto model only)
 *   seasonal mode     per series, chosen at each baseline refit: when the
 *                     median of the values at the same time on the last
 *                     seasonal_lags days (looked up in the history ring)
 *                     predicts the history with a band below
 *                     seasonal_ratio times the harmonic band, the features
 *                     and the residual score of the series are taken
 *                     against that seasonal prediction instead (sn[]: its
 *                     scale, band and change scale; prevsn: the previous
 *                     value's seasonal residual)
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
#include "ml/shape.h"
#include "tsdb/base/sm_alloc.h"

#define ON_MAGIC "SMON"
#define ON_VERSION 4
#define FIRST_REFIT 16
/* Cold start: from row COLD_STEP to row COLD_ROWS the baseline is refitted
 * at least every COLD_STEP rows (next_refit_after). */
#define COLD_STEP 64
#define COLD_ROWS 1024
#define MIN_FOREST_ROWS 128
#define CALIB_POINTS 512
#define ZBAND_Q 0.995
#define MAX_SERIES 1024u
#define MAX_RING (1u << 22)
#define SEASON_MS 86400000LL /* the seasonal-naive period: one day */
#define MAX_LAGS 3
#define SN_MIN_POINTS 64     /* seasonal residuals a refit needs to choose the mode */

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
    double *zband;          /* k: effective band in scales (>= baseline.z) */
    sm_ms_t step_ms;        /* median step of the history at the last refit, >= 0;
                               a seasonal lag matches within step_ms / 2 */
    double *sn;             /* k x 3: seasonal-naive scale (0: harmonic mode),
                               band in scales (>= baseline.z), change scale */
    double *prevsn;         /* k: seasonal residual of the previous value (NaN: none) */
    ml_baseline_t *bl;      /* NULL before the first refit */
    ml_iforest_t *forest;   /* NULL before the first forest fit */
    ml_score_calib calib;
    ml_score_novelty nov;
    ml_shape *shape;        /* k shape-novelty states, NULL when off (shape_on) */
    ml_score_novelty shape_nov; /* repeat suppression of the shape score */
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
    o->novelty_horizon = 100;
    o->level_alpha = 0.02;
    /* The seasonal-naive mode (ml/README.md, "Online mode" and
     * "Evaluation"): the harmonics draw a square daily wave with ripples
     * and overshoots at its edges, which alarmed every day on the NAB
     * subset's artificial daily files. */
    o->seasonal_ratio = 0.5;
    o->seasonal_lags = 3;
    /* Shape novelty (shape.h; ml/README.md, "Online mode" and
     * "Evaluation"): on the NAB subset it moved the standard score from
     * 70.0 to 71.7 on the mean of forest seeds 1, 7 and 42, and from 69.3
     * to 71.3 on seeds 2, 3 and 5; a history above 1,024 levels adds
     * nothing there. */
    o->shape_history = 2048;
    o->shape_weight = 0.5;
    /* The residual and forest scores combined by a p-norm instead of
     * their max (ml/README.md, "Features and score" and "Evaluation"): on
     * the NAB subset 71.7 -> 74.4 on forest seeds 1, 7, 42, 71.3 -> 74.5
     * on 2, 3, 5 and 71.8 -> 74.0 on six more; p = 4 and 5 give 73.0 to
     * 74.1, and 4.5 is the best of the grid tried there. */
    o->combine_p = 4.5;
    ml_baseline_opts_default(&o->baseline);
    /* the streaming scorer absorbs level shifts through its level
     * correction; a trend term would read a fresh shift as a slope */
    o->baseline.trend = false;
    /* Huber's constant for 95 % efficiency under normal noise; it also
     * caps each step of the level correction */
    o->baseline.huber_k = 1.345;
    ml_iforest_opts_default(&o->forest);
    /* Extended forest (hyperplane cuts through all 3k features): the
     * axis-parallel cuts of the standard forest leave score artefacts along
     * the axes, which on the NAB subset showed up as false alarms.  Over
     * three forest seeds the subset's standard score moved from 61.9 /
     * 56.6 / 58.7 to 65.6 / 62.5 / 63.1 (ml/README.md, "Evaluation"). */
    o->forest.extended = true;
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
    sm_free(s->zband);
    sm_free(s->sn);
    sm_free(s->prevsn);
    sm_free(s->scratch);
    ml_baseline_free(s->bl);
    ml_iforest_free(s->forest);
    ml_score_novelty_fini(&s->nov);
    for (uint32_t j = 0; s->shape && j < s->k; j++) ml_shape_fini(&s->shape[j]);
    sm_free(s->shape);
    ml_score_novelty_fini(&s->shape_nov);
    sm_free(s);
}

uint64_t ml_online_rows(const ml_online_t *s) { return s->rows; }

/* Whether the options ask for shape novelty: the auto model only (the
 * single-model views show one model's score). */
static bool shape_on(const ml_online_opts *o) {
    return o->model == ML_MODEL_AUTO && o->shape_history > 0 && o->shape_weight > 0;
}

/* Scores in the shape score's suppression ring: none when shape novelty is off. */
static uint32_t shape_ring_len(const ml_online_opts *o) { return shape_on(o) ? o->novelty_horizon : 0; }

/* The auto model's combined score: the p-norm of the residual score r and
 * the forest score f, capped at 1 (p = 0: their max, the norm's limit).
 * Both are in [0, 1]; the larger is factored out so that no power
 * underflows: max * (1 + (min/max)^p)^(1/p). */
static double combine(double r, double f, double p) {
    double hi = r > f ? r : f, lo = r > f ? f : r;
    if (p == 0 || !(hi > 0)) return hi;
    double c = hi * pow(1.0 + pow(lo / hi, p), 1.0 / p);
    return c < 1.0 ? c : 1.0;
}

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
    if (!(o->seasonal_ratio >= 0 && o->seasonal_ratio <= 1) || o->seasonal_lags < 1 || o->seasonal_lags > MAX_LAGS)
        return SM_ERR(err, SM_EINVAL, "online: seasonal_ratio must be in [0, 1], seasonal_lags in 1..%d", MAX_LAGS);
    if ((o->shape_history && (o->shape_history < ML_SHAPE_MIN_HISTORY || o->shape_history > ML_SHAPE_MAX_HISTORY)) ||
        !(o->shape_weight >= 0 && o->shape_weight <= 1))
        return SM_ERR(err, SM_EINVAL, "online: shape_history must be 0 or %d..%u, shape_weight in [0, 1]",
                      ML_SHAPE_MIN_HISTORY, ML_SHAPE_MAX_HISTORY);
    if (!(o->combine_p == 0 || (o->combine_p >= 1 && o->combine_p <= 64)))
        return SM_ERR(err, SM_EINVAL, "online: combine_p must be 0 (max) or in [1, 64]");
    if (!(o->baseline.huber_k > 0) || o->baseline.weekly_harmonics >= 7 || o->baseline.daily_harmonics > 24 ||
        !(o->baseline.halflife_ms >= 0) || !(o->baseline.z > 0) ||
        o->baseline.iterations > ML_BASELINE_MAX_ITERATIONS)
        return SM_ERR(err, SM_EINVAL, "online: bad baseline options");
    /* At most 1,000 trees (ten times the default): the streaming scorer
     * refits its forest every forest_every rows, and a decoded state must
     * not be able to make each refit take seconds (fuzz_ml_model). */
    if (o->forest.trees < 1 || o->forest.trees > 1000 || o->forest.subsample < 1 || o->forest.max_depth > 64)
        return SM_ERR(err, SM_EINVAL, "online: forest options: trees 1..1000, subsample >= 1, max_depth <= 64");
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
    s->zband = sm_malloc(s->k * sizeof(double));
    s->sn = sm_calloc((size_t)3 * s->k, sizeof(double));
    s->prevsn = sm_malloc(s->k * sizeof(double));
    s->scratch = sm_malloc((s->dim + o->spread_window) * sizeof(double));
    if (!s->ht || !s->hv || !s->z2 || !s->fr || !s->corr || !s->dscale || !s->prev || !s->hmed || !s->hscale || !s->zband ||
        !s->sn || !s->prevsn || !s->scratch || ml_score_novelty_init(&s->nov, o->novelty_horizon, NULL) ||
        ml_score_novelty_init(&s->shape_nov, shape_ring_len(o), NULL)) {
        ml_online_free(s);
        return NULL;
    }
    if (shape_on(o)) {
        if (!(s->shape = sm_calloc(s->k, sizeof *s->shape))) {
            ml_online_free(s);
            return NULL;
        }
        for (uint32_t j = 0; j < s->k; j++)
            if (ml_shape_init(&s->shape[j], o->shape_history, NULL)) {
                ml_online_free(s);
                return NULL;
            }
    }
    for (uint32_t j = 0; j < s->k; j++) {
        s->prev[j] = NAN;
        s->prevsn[j] = NAN;
        s->zband[j] = o->baseline.z;
    }
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

/* ---- the seasonal-naive prediction ---- */

/* Ring slot of the row, among the oldest `end` rows of the history ring,
 * whose timestamp is nearest to want and at most step_ms / 2 away (the
 * later one on a tie); -1 if there is none.  The ring is in time order;
 * differences are taken unsigned so that no timestamp overflows them. */
static long ring_find(const ml_online_t *s, uint32_t end, sm_ms_t want) {
    uint32_t H = s->o.history, first = (s->hpos + H - s->hlen) % H, lo = 0, hi = end;
    while (lo < hi) { /* the first row at or after want */
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->ht[(first + mid) % H] < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t bd = (uint64_t)(s->step_ms / 2) + 1;
    long best = -1;
    if (lo < end && (uint64_t)s->ht[(first + lo) % H] - (uint64_t)want < bd) {
        best = (long)((first + lo) % H);
        bd = (uint64_t)s->ht[(first + lo) % H] - (uint64_t)want;
    }
    if (lo > 0 && (uint64_t)want - (uint64_t)s->ht[(first + lo - 1) % H] < bd) best = (long)((first + lo - 1) % H);
    return best;
}

/* Ring slots of the rows at t minus 1 .. seasonal_lags days among the
 * oldest `end` rows (OUT slot[MAX_LAGS], -1: none). */
static void lag_slots(const ml_online_t *s, uint32_t end, sm_ms_t t, long *slot) {
    for (uint32_t l = 0; l < MAX_LAGS; l++) slot[l] = -1;
    if (t < INT64_MIN + MAX_LAGS * SEASON_MS) return;
    for (uint32_t l = 0; l < s->o.seasonal_lags; l++) slot[l] = ring_find(s, end, t - (sm_ms_t)(l + 1) * SEASON_MS);
}

/* The seasonal-naive prediction of series j: the median of its values at
 * the slots (the mean of two), NaN if none of them holds a value. */
static double seasonal_predict(const ml_online_t *s, uint32_t j, const long *slot) {
    double a[MAX_LAGS];
    int c = 0;
    for (uint32_t l = 0; l < MAX_LAGS; l++)
        if (slot[l] >= 0 && !isnan(s->hv[(size_t)j * s->o.history + (size_t)slot[l]]))
            a[c++] = s->hv[(size_t)j * s->o.history + (size_t)slot[l]];
    if (c == 0) return NAN;
    if (c == 1) return a[0];
    if (c == 2) return 0.5 * (a[0] + a[1]);
    double lo = a[0] < a[1] ? a[0] : a[1], hi = a[0] < a[1] ? a[1] : a[0];
    if (hi > a[2]) hi = a[2];
    return lo > hi ? lo : hi;
}

/* Choose the mode of series j at a refit (rows of the ring in time order:
 * y[0..n), lagslot their lag slots, sc and zband the harmonic fit's scale
 * and band; tmp and rser n doubles of scratch).  The seasonal residuals
 * are out of sample (every lag is an earlier row), the harmonic ones in
 * sample, which favours the harmonics. */
static void choose_seasonal(ml_online_t *s, uint32_t j, const double *y, uint32_t n, const long *lagslot, double sc,
                            double *tmp, double *rser) {
    uint32_t nr = 0;
    double sum = 0.0, *sn = s->sn + (size_t)3 * j;
    sn[0] = sn[1] = sn[2] = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        rser[i] = NAN;
        if (isnan(y[i])) continue;
        double p = seasonal_predict(s, j, lagslot + (size_t)i * MAX_LAGS);
        if (isnan(p)) continue;
        rser[i] = y[i] - p;
        tmp[nr] = fabs(rser[i]);
        sum += tmp[nr++];
    }
    if (nr < SN_MIN_POINTS) return;
    double scale = ml_robust_scale(tmp, nr, sum, 1e-9 * fabs(s->hmed[j]) + 1e-12);
    for (uint32_t i = 0; i < nr; i++) tmp[i] /= scale;
    double q = ml_select(tmp, nr, (size_t)(ZBAND_Q * (double)(nr - 1)));
    double band = q > s->o.baseline.z ? q : s->o.baseline.z;
    if (!(band * scale < s->o.seasonal_ratio * s->zband[j] * sc)) return;
    sn[0] = scale;
    sn[1] = band;
    sn[2] = ml_features_diff_scale(rser, n);
}

static double innovation(const ml_online_t *s, uint32_t j, double r) {
    double lim = s->o.baseline.huber_k * ml_baseline_scale(s->bl, j), d = r - s->corr[j];
    if (!(lim > 0)) return 0.0;
    return d > lim ? lim : d < -lim ? -lim : d;
}

static int refit_baseline(ml_online_t *s, sm_error *err) {
    uint32_t n = s->hlen, H = s->o.history, k = s->k;
    bool seasonal = s->o.seasonal_ratio > 0 && s->o.model != ML_MODEL_IFOREST;
    sm_ms_t *t = sm_malloc((size_t)n * sizeof *t);
    double *y = sm_malloc((size_t)n * k * sizeof *y), *tmp = sm_malloc((size_t)n * sizeof *tmp);
    double *rser = seasonal ? sm_malloc((size_t)n * sizeof *rser) : NULL;
    long *lagslot = seasonal ? sm_malloc((size_t)n * MAX_LAGS * sizeof *lagslot) : NULL;
    int rc = SM_ENOMEM;
    if (!t || !y || !tmp || (seasonal && (!rser || !lagslot))) {
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
    /* in double first: a tiny alpha asks for more rows than a uint32 holds */
    double want = s->o.level_alpha > 0 ? ceil(3.0 / s->o.level_alpha) : 0.0;
    uint32_t replay = want < (double)n ? (uint32_t)want : n;
    if (seasonal) {
        /* the lag tolerance: half the median step (in double: a decoded
         * ring's timestamps may be anything) */
        for (uint32_t i = 1; i < n; i++) tmp[i - 1] = (double)t[i] - (double)t[i - 1];
        double step = n > 1 ? ml_select(tmp, n - 1, (n - 1) / 2) : 0.0;
        s->step_ms = step > 0 ? (step < 0x1p60 ? (sm_ms_t)step : (sm_ms_t)1 << 60) : 0;
        for (uint32_t i = 0; i < n; i++) lag_slots(s, i, t[i], lagslot + (size_t)i * MAX_LAGS);
    }
    for (uint32_t j = 0; j < k; j++) {
        const double *yj = y + (size_t)j * n;
        s->dscale[j] = ml_features_diff_scale(yj, n);
        median_scale(yj, n, tmp, &s->hmed[j], &s->hscale[j]);
        /* the band widens to the series' own tail: the ZBAND_Q quantile of
         * |z| over the history, so a heavy-tailed series needs a bigger
         * surprise than a Gaussian one before it scores 0.5 */
        double sc = ml_baseline_scale(s->bl, j);
        uint32_t nz = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (isnan(yj[i])) continue;
            double e;
            ml_baseline_predict(s->bl, j, t[i], &e, NULL, NULL);
            if (!isnan(e)) tmp[nz++] = fabs(yj[i] - e) / sc;
        }
        double q = nz >= 64 ? ml_select(tmp, nz, (size_t)(ZBAND_Q * (double)(nz - 1))) : 0.0;
        s->zband[j] = q > s->o.baseline.z ? q : s->o.baseline.z;
        if (seasonal) choose_seasonal(s, j, yj, n, lagslot, sc, tmp, rser);
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
    sm_free(rser);
    sm_free(lagslot);
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
    /* calibrate on at most CALIB_POINTS of the training rows, evenly spread
     * (scoring all of them would cost more than the fit) */
    uint32_t stride = n > CALIB_POINTS ? n / CALIB_POINTS : 1, nc = 0;
    for (uint32_t i = 0; i < n; i += stride) memmove(x + (size_t)nc++ * dim, x + (size_t)i * dim, dim * sizeof *x);
    if ((rc = ml_iforest_score(f, x, nc, sc, err))) {
        ml_iforest_free(f);
        goto done;
    }
    ml_score_calibrate(sc, nc, &s->calib);
    ml_iforest_free(s->forest);
    s->forest = f;
    s->forest_fits++;
done:
    sm_free(x);
    sm_free(sc);
    return rc;
}

/* The row of the baseline refit after the one at row r: doubling from
 * FIRST_REFIT while r < refit_every, then every refit_every rows, except
 * that between COLD_STEP and COLD_ROWS a step is at most COLD_STEP rows
 * (16, 32, 64, 128, 192, ..., 1024, then 1024 + refit_every, ... by
 * default).  A model fitted on a few hundred rows is the least settled one
 * and the one that drifts fastest; on the NAB subset the denser cold start
 * moved the standard score from 67.2 to 68.6 on the mean of seeds 1, 7 and
 * 42, and the fixed-threshold one from 46.3 to 49.1 (ml/README.md,
 * "Evaluation").  The refits it adds cost a pass over at most COLD_ROWS
 * history rows each. */
static uint64_t next_refit_after(uint64_t r, uint32_t refit_every) {
    uint64_t step = r < refit_every ? r : refit_every;
    if (r >= COLD_STEP && r < COLD_ROWS && step > COLD_STEP) step = COLD_STEP;
    return r + step;
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
    double zs[MAX_SERIES], esn[MAX_SERIES];
    long slot[MAX_LAGS] = {-1, -1, -1};
    for (uint32_t j = 0; fitted && j < k; j++)
        if (s->sn[(size_t)3 * j] > 0) {
            lag_slots(s, s->hlen, t, slot);
            break;
        }

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
        esn[j] = NAN;
        if (isnan(v[j]) || !fitted || isnan(e)) {
            fj[0] = fj[1] = fj[2] = 0.0;
            continue;
        }
        any = true;
        double ref = e, rs = sc, fy = v[j], fprev = s->prev[j], fds = s->dscale[j];
        const double *sn = s->sn + (size_t)3 * j;
        if (o->model == ML_MODEL_IFOREST) {
            ref = s->hmed[j];
            rs = s->hscale[j];
        } else if (sn[0] > 0 && !isnan(esn[j] = seasonal_predict(s, j, slot))) {
            /* seasonal mode: every feature is taken on the residual
             * against the same time on the previous days */
            fy = v[j] - esn[j];
            fprev = s->prevsn[j];
            ref = 0.0;
            rs = sn[0];
            fds = sn[2];
            if (expected) expected[j] = esn[j];
            if (lower) lower[j] = esn[j] - o->baseline.z * rs;
            if (upper) upper[j] = esn[j] + o->baseline.z * rs;
        }
        double z = (fy - ref) / rs, zc = z > ML_FEAT_CLIP ? ML_FEAT_CLIP : z < -ML_FEAT_CLIP ? -ML_FEAT_CLIP : z;
        zs[j] = zc;
        const double *ring = s->z2 + (size_t)j * W;
        /* the window as it will be once this point is pushed: slot zpos
         * holds the oldest entry (or is the next free one) */
        for (uint32_t i = 0; i < W; i++) win[i] = i < s->zlen ? ring[i] : NAN;
        win[s->zpos] = zc * zc;
        ml_features_point(fy, fprev, ref, rs, fds, win, W, fj);
        if (o->model != ML_MODEL_IFOREST) {
            double r = isnan(esn[j]) ? ml_features_residual_score((v[j] - e) / sc, s->zband[j])
                                     : ml_features_residual_score(z, sn[1]);
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
                      : combine(best_res, fscore, o->combine_p);
    if (!scoring || !any) combined = 0.0;
    ml_online_point pt = {0};
    pt.combined = combined;
    pt.residual_score = scoring ? best_res : 0.0;
    pt.forest_score = scoring ? fscore : 0.0;
    pt.score = ml_score_novelty_next(&s->nov, combined);
    /* explaining a forest score costs 3k + 1 walks: only for rows that report */
    if (fscore > best_res && s->forest && pt.score > 0) {
        size_t d = ml_iforest_explain(s->forest, feat);
        pt.driver_series = (uint32_t)(d / ML_FEAT_DIM);
        pt.driver_feature = (uint32_t)(d % ML_FEAT_DIM);
    } else {
        pt.driver_series = best_j;
        pt.driver_feature = ML_FEAT_RESIDUAL;
    }
    /* shape novelty, max-combined after the repeat suppression of the
     * others, with its own (shape.h) */
    if (s->shape) {
        double raw = 0.0;
        uint32_t sj = 0;
        for (uint32_t j = 0; j < k; j++) {
            double r = ml_shape_next(&s->shape[j], v[j]);
            if (r > raw) {
                raw = r;
                sj = j;
            }
        }
        pt.shape_score = o->shape_weight * ml_score_novelty_next(&s->shape_nov, raw);
        if (pt.shape_score > pt.score) {
            pt.score = pt.shape_score;
            pt.driver_series = sj;
            pt.driver_feature = ML_FEAT_SHAPE;
        }
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
            s->prevsn[j] = isnan(esn[j]) ? NAN : v[j] - esn[j];
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
        s->next_refit = next_refit_after(s->next_refit, o->refit_every);
        if ((rc = refit_baseline(s, err))) return rc;
    }
    if (o->model != ML_MODEL_BASELINE && s->flen >= MIN_FOREST_ROWS && s->rows >= s->next_forest) {
        s->next_forest = s->rows + o->forest_every;
        if ((rc = refit_forest(s, err))) return rc;
    }
    return 0;
}

/* ---- persistence ----
 *
 * Frame (ml_int.h) with magic "SMON", version 2, body (docs/ML.md, "Online
 * state"): the options, the counters, the rings, then the baseline and the
 * forest as nested frames, each prefixed by its le32 length (0: none).
 * Version 2 added the seasonal-naive mode (two options, the step, four
 * values per series), version 3 shape novelty (two options, its
 * suppression ring and one shape state per series), version 4 the
 * combine_p option; an older state is refused and the caller refits.
 */
static int put_opts(sm_buf *b, const ml_online_opts *o) {
    const uint32_t u[] = {o->series, (uint32_t)o->model, o->history, o->refit_every, o->warmup, o->spread_window,
                          o->feature_history, o->forest_every, o->novelty_horizon, o->baseline.seasons,
                          o->baseline.daily_harmonics, o->baseline.weekly_harmonics, o->baseline.trend,
                          o->baseline.iterations, o->forest.trees, o->forest.subsample, o->forest.max_depth,
                          o->forest.extended, o->forest.extension, o->seasonal_lags, o->shape_history};
    int rc = 0;
    for (size_t i = 0; i < sizeof u / sizeof u[0] && !rc; i++) rc = sm_buf_put_le32(b, u[i]);
    const double d[] = {o->level_alpha, o->baseline.halflife_ms, o->baseline.huber_k, o->baseline.min_gain,
                        o->baseline.z, o->seasonal_ratio, o->shape_weight, o->combine_p};
    for (size_t i = 0; i < sizeof d / sizeof d[0] && !rc; i++) rc = ml_put_f64(b, d[i]);
    return rc ? rc : sm_buf_put_le64(b, o->forest.seed);
}

static int get_opts(sm_rd *r, ml_online_opts *o) {
    uint32_t u[21];
    double d[8];
    for (size_t i = 0; i < 21; i++)
        if (sm_rd_le32(r, &u[i])) return SM_ECORRUPT;
    for (size_t i = 0; i < 8; i++)
        if (ml_rd_f64(r, &d[i])) return SM_ECORRUPT;
    if (u[12] > 1 || u[17] > 1) return SM_ECORRUPT;
    ml_online_opts_default(o);
    o->series = u[0];
    o->model = (ml_model_kind)u[1];
    o->history = u[2];
    o->refit_every = u[3];
    o->warmup = u[4];
    o->spread_window = u[5];
    o->feature_history = u[6];
    o->forest_every = u[7];
    o->novelty_horizon = u[8];
    o->baseline.seasons = u[9];
    o->baseline.daily_harmonics = u[10];
    o->baseline.weekly_harmonics = u[11];
    o->baseline.trend = u[12];
    o->baseline.iterations = u[13];
    o->forest.trees = u[14];
    o->forest.subsample = u[15];
    o->forest.max_depth = u[16];
    o->forest.extended = u[17];
    o->forest.extension = u[18];
    o->seasonal_lags = u[19];
    o->shape_history = u[20];
    o->level_alpha = d[0];
    o->baseline.halflife_ms = d[1];
    o->baseline.huber_k = d[2];
    o->baseline.min_gain = d[3];
    o->baseline.z = d[4];
    o->seasonal_ratio = d[5];
    o->shape_weight = d[6];
    o->combine_p = d[7];
    return sm_rd_le64(r, &o->forest.seed) ? SM_ECORRUPT : 0;
}

static int put_f64s(sm_buf *b, const double *v, size_t n) {
    int rc = sm_buf_reserve(b, n * 8);
    for (size_t i = 0; i < n && !rc; i++) rc = ml_put_f64(b, v[i]);
    return rc;
}

static int get_f64s(sm_rd *r, double *v, size_t n) {
    if (sm_rd_left(r) / 8 < n) return SM_ECORRUPT;
    for (size_t i = 0; i < n; i++) ml_rd_f64(r, &v[i]);
    return 0;
}

static int put_blob(sm_buf *b, const uint8_t *p, size_t n) {
    int rc = sm_buf_put_le32(b, (uint32_t)n);
    return rc || !n ? rc : sm_buf_append(b, p, n);
}

int ml_online_encode(const ml_online_t *s, uint8_t **buf, size_t *len, sm_error *err) {
    const ml_online_opts *o = &s->o;
    uint8_t *bb = NULL, *fb = NULL;
    size_t bl = 0, fl = 0;
    int rc = 0;
    if (s->bl && (rc = ml_baseline_encode(s->bl, &bb, &bl, err))) return rc;
    if (s->forest && (rc = ml_iforest_encode(s->forest, &fb, &fl, err))) {
        sm_free(bb);
        return rc;
    }
    sm_buf b = SM_BUF_INIT;
    rc = ml_frame_begin(&b, ON_MAGIC, ON_VERSION);
    rc = rc ? rc : put_opts(&b, o);
    const uint64_t c64[] = {s->rows, s->next_refit, s->next_forest, s->forest_fits, (uint64_t)s->last_t,
                            (uint64_t)s->step_ms};
    for (size_t i = 0; i < 6 && !rc; i++) rc = sm_buf_put_le64(&b, c64[i]);
    const uint32_t c32[] = {s->hpos,    s->hlen,       s->zpos,          s->zlen,           s->fpos,
                            s->flen,    s->nov.pos,    s->nov.filled,    s->shape_nov.pos, s->shape_nov.filled};
    for (size_t i = 0; i < 10 && !rc; i++) rc = sm_buf_put_le32(&b, c32[i]);
    rc = rc ? rc : sm_buf_reserve(&b, (size_t)o->history * 8);
    for (uint32_t i = 0; i < o->history && !rc; i++) rc = sm_buf_put_le64(&b, (uint64_t)s->ht[i]);
    uint32_t k = s->k;
    rc = rc ? rc : put_f64s(&b, s->hv, (size_t)o->history * k);
    rc = rc ? rc : put_f64s(&b, s->z2, (size_t)o->spread_window * k);
    rc = rc ? rc : put_f64s(&b, s->fr, (size_t)o->feature_history * s->dim);
    const double *per[] = {s->corr, s->dscale, s->prev, s->hmed, s->hscale, s->zband};
    for (size_t i = 0; i < 6 && !rc; i++) rc = put_f64s(&b, per[i], k);
    rc = rc ? rc : put_f64s(&b, s->sn, (size_t)3 * k);
    rc = rc ? rc : put_f64s(&b, s->prevsn, k);
    rc = rc ? rc : ml_put_f64(&b, s->calib.median);
    rc = rc ? rc : ml_put_f64(&b, s->calib.q995);
    rc = rc ? rc : put_f64s(&b, s->nov.ring, o->novelty_horizon);
    rc = rc ? rc : put_f64s(&b, s->shape_nov.ring, s->shape_nov.horizon);
    for (uint32_t j = 0; s->shape && j < k && !rc; j++) rc = ml_shape_encode(&s->shape[j], &b);
    rc = rc ? rc : put_blob(&b, bb, bl);
    rc = rc ? rc : put_blob(&b, fb, fl);
    rc = rc ? rc : ml_frame_end(&b);
    sm_free(bb);
    sm_free(fb);
    if (rc) {
        sm_buf_fini(&b);
        return SM_ERR(err, rc, "online: out of memory while encoding");
    }
    *buf = sm_buf_detach(&b, len);
    return 0;
}

int ml_online_decode(const uint8_t *buf, size_t len, ml_online_t **out, sm_error *err) {
    sm_rd r;
    int rc = ml_frame_open(buf, len, ON_MAGIC, ON_VERSION, &r, err);
    if (rc) return rc;
    ml_online_opts o;
    if (get_opts(&r, &o)) return SM_CORRUPT(err, "online state: truncated options");
    if (check_opts(&o, NULL)) return SM_CORRUPT(err, "online state: options out of range");
    uint32_t shape_horizon = shape_ring_len(&o);
    uint64_t c64[6];
    uint32_t c32[10];
    for (size_t i = 0; i < 6; i++)
        if (sm_rd_le64(&r, &c64[i])) return SM_CORRUPT(err, "online state: truncated counters");
    for (size_t i = 0; i < 10; i++)
        if (sm_rd_le32(&r, &c32[i])) return SM_CORRUPT(err, "online state: truncated counters");
    /* ring positions (pairs of position, fill) inside their rings, fills
     * within capacity; an empty ring (a capacity of 0) has both at 0 */
    const uint32_t caps[5] = {o.history, o.spread_window, o.feature_history, o.novelty_horizon, shape_horizon};
    for (size_t i = 0; i < 5; i++)
        if ((caps[i] ? c32[2 * i] >= caps[i] : c32[2 * i] != 0) || c32[2 * i + 1] > caps[i])
            return SM_CORRUPT(err, "online state: ring positions out of range");
    if ((int64_t)c64[5] < 0) return SM_CORRUPT(err, "online state: negative step");
    /* the rings must all be there before anything is allocated */
    uint64_t k = o.series, need = (uint64_t)o.history * 8 * (1 + k) + (uint64_t)o.spread_window * k * 8 +
                               (uint64_t)o.feature_history * 3 * k * 8 + 10 * k * 8 + 16 +
                               (uint64_t)o.novelty_horizon * 8 + 8 + (uint64_t)shape_horizon * 8 +
                               (shape_on(&o) ? k * ml_shape_encoded_len(o.shape_history) : 0);
    if (sm_rd_left(&r) < need) return SM_CORRUPT(err, "online state: truncated rings");
    ml_online_t *s = alloc_state(&o);
    if (!s) return SM_ERR(err, SM_ENOMEM, "online: out of memory while decoding");
    s->rows = c64[0];
    s->next_refit = c64[1];
    s->next_forest = c64[2];
    s->forest_fits = c64[3];
    s->last_t = (sm_ms_t)c64[4];
    s->step_ms = (sm_ms_t)c64[5];
    s->hpos = c32[0];
    s->hlen = c32[1];
    s->zpos = c32[2];
    s->zlen = c32[3];
    s->fpos = c32[4];
    s->flen = c32[5];
    s->nov.pos = c32[6];
    s->nov.filled = c32[7];
    s->shape_nov.pos = c32[8];
    s->shape_nov.filled = c32[9];
    for (uint32_t i = 0; i < o.history; i++) {
        uint64_t v;
        sm_rd_le64(&r, &v);
        s->ht[i] = (sm_ms_t)v;
    }
    get_f64s(&r, s->hv, (size_t)o.history * k);
    get_f64s(&r, s->z2, (size_t)o.spread_window * k);
    get_f64s(&r, s->fr, (size_t)o.feature_history * s->dim);
    double *per[] = {s->corr, s->dscale, s->prev, s->hmed, s->hscale, s->zband};
    for (size_t i = 0; i < 6; i++) get_f64s(&r, per[i], k);
    get_f64s(&r, s->sn, (size_t)3 * k);
    get_f64s(&r, s->prevsn, k);
    /* a series in seasonal mode needs a finite scale, band and change
     * scale, as choose_seasonal leaves them */
    for (uint32_t j = 0; j < k; j++) {
        const double *sn = s->sn + (size_t)3 * j;
        bool off = sn[0] == 0 && sn[1] == 0 && sn[2] == 0;
        if (!off && !(sn[0] > 0 && isfinite(sn[0]) && sn[1] >= o.baseline.z && isfinite(sn[1]) && sn[2] > 0 &&
                      isfinite(sn[2]))) {
            rc = SM_CORRUPT(err, "online state: bad seasonal scale of series %u", j);
            goto fail;
        }
    }
    ml_rd_f64(&r, &s->calib.median);
    ml_rd_f64(&r, &s->calib.q995);
    get_f64s(&r, s->nov.ring, o.novelty_horizon);
    get_f64s(&r, s->shape_nov.ring, shape_horizon);
    for (uint32_t j = 0; s->shape && j < k; j++)
        if (ml_shape_decode(&s->shape[j], &r)) {
            rc = SM_CORRUPT(err, "online state: bad shape state of series %u", j);
            goto fail;
        }
    for (int part = 0; part < 2; part++) {
        uint32_t n;
        const uint8_t *p;
        if (sm_rd_le32(&r, &n) || sm_rd_bytes(&r, n, &p)) {
            rc = SM_CORRUPT(err, "online state: truncated nested model");
            goto fail;
        }
        if (!n) continue;
        if (part == 0) {
            if ((rc = ml_baseline_decode(p, n, &s->bl, err))) goto fail;
            if (ml_baseline_series(s->bl) != k) {
                rc = SM_CORRUPT(err, "online state: baseline has %zu series, expected %llu",
                                ml_baseline_series(s->bl), (unsigned long long)k);
                goto fail;
            }
        } else {
            if ((rc = ml_iforest_decode(p, n, &s->forest, err))) goto fail;
            if (ml_iforest_dim(s->forest) != s->dim) {
                rc = SM_CORRUPT(err, "online state: forest dimension does not match");
                goto fail;
            }
        }
    }
    if (sm_rd_left(&r) != 0) {
        rc = SM_CORRUPT(err, "online state: %zu trailing bytes", sm_rd_left(&r));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    ml_online_free(s);
    return rc;
}
