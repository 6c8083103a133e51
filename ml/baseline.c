/* SPDX-License-Identifier: Apache-2.0
 *
 * baseline.c - robust seasonal baselines for many series at once
 * (baseline.h; design and math in ml/README.md, "Baseline"; byte format of
 * a persisted fit in docs/ML.md, "Baseline state").
 *
 * The fit, for a block of series sharing the timestamps t[0..n):
 *
 *   X (n x p)  design: 1, u(t), daily and weekly Fourier pairs
 *   W          diagonal forgetting weights w_i = 2^-((t_end - t_i)/halflife)
 *   A = X^T W X + ridge   one p x p matrix for every series; its Cholesky
 *                         factor (LAPACK dpotrf) is computed once per model
 *   Y* (n x m) pseudo-observations, initially y with NaN -> series mean
 *   repeat:   Z = (W X)^T Y*          one GEMM over all series
 *             B = A_S^-1 Z_S          dpotrs, series grouped by model S
 *             F = X B                 one GEMM
 *             s_j = MAD(y_j - F_j)    robust scale
 *             Y* = F + clip(y - F, +-k s);  NaN -> F
 *
 * Iterating least squares on winsorised pseudo-observations converges to
 * the Huber M-estimate (Huber 1981, section 7.8) with a design matrix that
 * never changes, which is what lets one GEMM serve every series; per-series
 * IRLS weights would need one p x p system per series.  After the first
 * round each series picks its seasonal blocks (select_models).
 *
 * Series are processed in column blocks of BLOCK_SERIES so that the scratch
 * memory stays bounded (2 * n * BLOCK_SERIES doubles) whatever m is.
 */
#include "ml/baseline.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ml/ml_int.h"
#include "tsdb/base/sm_alloc.h"

#define BLOCK_SERIES 32
#define MAD_SAMPLE 2048 /* residuals the scale is estimated from, at most */
#define BL_MAGIC "SMBL"
#define BL_VERSION 1
#define NMODELS 4 /* model index = season mask: 0 none, 1 daily, 2 weekly, 3 both */
#define MAX_HARM 24

struct ml_baseline {
    size_t m;
    uint32_t p, kd, kw; /* columns; daily and weekly harmonics in the design */
    bool trend;
    sm_ms_t t0, t1;     /* fitted window */
    double z;           /* band half-width in scales */
    double *coef;       /* p x m column-major; unused blocks are zero */
    double *scale;      /* m */
    uint32_t *mask;     /* m: ML_SEASON_* chosen */
    uint64_t *count;    /* m: observed points */
};

void ml_baseline_opts_default(ml_baseline_opts *o) {
    memset(o, 0, sizeof *o);
    o->seasons = ML_SEASON_AUTO;
    o->daily_harmonics = 6;
    o->weekly_harmonics = 3;
    o->trend = true;
    o->halflife_ms = 7.0 * ML_DAY_MS;
    o->huber_k = 2.0;
    o->iterations = 2;
    o->min_gain = 0.05;
    o->z = 4.0;
}

void ml_baseline_free(ml_baseline_t *b) {
    if (!b) return;
    sm_free(b->coef);
    sm_free(b->scale);
    sm_free(b->mask);
    sm_free(b->count);
    sm_free(b);
}

size_t ml_baseline_series(const ml_baseline_t *b) { return b->m; }
uint32_t ml_baseline_seasons(const ml_baseline_t *b, size_t j) { return b->mask[j]; }
double ml_baseline_scale(const ml_baseline_t *b, size_t j) { return b->scale[j]; }
size_t ml_baseline_count(const ml_baseline_t *b, size_t j) { return (size_t)b->count[j]; }

/* Column layout: [0] intercept, [1] trend if any, then daily pairs, then
 * weekly pairs. */
static uint32_t col_daily(const ml_baseline_t *b) { return 1 + (b->trend ? 1 : 0); }
static uint32_t col_weekly(const ml_baseline_t *b) { return col_daily(b) + 2 * b->kd; }

static double phase(sm_ms_t t, int64_t period) {
    int64_t r = t % period;
    if (r < 0) r += period;
    return 6.283185307179586 * ((double)r / (double)period);
}

/* One design row at t into row[0..p) (stride apart). */
static void design_row(const ml_baseline_t *b, sm_ms_t t, double *row, size_t stride) {
    size_t c = 0;
    row[c++ * stride] = 1.0;
    if (b->trend) {
        /* In doubles: a decoded state may hold any int64 times. */
        double span = (double)b->t1 - (double)b->t0;
        double u = span > 0 ? ((double)t - (double)b->t1) / span : 0.0;
        if (u > 0) u = 0; /* held at the window's end */
        if (u < -1) u = -1;
        row[c++ * stride] = u;
    }
    if (b->kd) {
        double ph = phase(t, ML_DAY_MS);
        for (uint32_t k = 1; k <= b->kd; k++) {
            row[c++ * stride] = sin(k * ph);
            row[c++ * stride] = cos(k * ph);
        }
    }
    if (b->kw) {
        double ph = phase(t, ML_WEEK_MS);
        for (uint32_t k = 1; k <= b->kw; k++) {
            row[c++ * stride] = sin(k * ph);
            row[c++ * stride] = cos(k * ph);
        }
    }
}

void ml_baseline_predict(const ml_baseline_t *b, size_t j, sm_ms_t t, double *expected, double *lower,
                         double *upper) {
    double row[2 + 4 * MAX_HARM], e = NAN;
    if (j < b->m && b->count[j] > 0) {
        design_row(b, t, row, 1);
        const double *c = b->coef + j * b->p;
        e = 0.0;
        for (uint32_t i = 0; i < b->p; i++) e += row[i] * c[i];
    }
    double half = b->z * (j < b->m ? b->scale[j] : NAN);
    if (expected) *expected = e;
    if (lower) *lower = e - half;
    if (upper) *upper = e + half;
}

/* ---- fitting ---- */

typedef struct fitctx {
    const ml_baseline_opts *o;
    ml_baseline_t *b;
    const sm_ms_t *t;
    size_t n;
    double *X, *XW, *w;        /* n x p design, weighted design, weights */
    double sumw, neff;         /* sum of weights, Kish effective size */
    uint32_t allowed;          /* season blocks the design can carry */
    uint32_t idx[NMODELS][2 + 4 * MAX_HARM], np[NMODELS]; /* columns of each model */
    double *chol[NMODELS];     /* Cholesky factors of A restricted to a model */
    double *ys, *F, *Z, *B, *G, *res; /* block scratch */
    size_t recent_from;        /* first row of the recent part (scale) */
} fitctx;

static int prepare(fitctx *c, sm_error *err) {
    const ml_baseline_opts *o = c->o;
    ml_baseline_t *b = c->b;
    size_t n = c->n;
    /* the span the points cover: n points at a regular step cover n steps
     * (two weeks at one-minute resolution are 20,160 points, not 20,161) */
    double span_days = n > 1 ? (double)(c->t[n - 1] - c->t[0]) / ML_DAY_MS * (double)n / (double)(n - 1) : 0.0;
    double per_day = span_days > 0 ? (double)(n - 1) / span_days : 0.0;
    uint32_t kd = o->daily_harmonics > MAX_HARM ? MAX_HARM : o->daily_harmonics;
    uint32_t kw = o->weekly_harmonics > 6 ? 6 : o->weekly_harmonics;
    /* a harmonic needs at least two samples per cycle */
    while (kd > 0 && per_day < 2.0 * kd + 1.0) kd--;
    while (kw > 0 && per_day * 7.0 < 2.0 * kw + 1.0) kw--;
    bool force = o->seasons != ML_SEASON_AUTO;
    bool want_d = force ? (o->seasons & ML_SEASON_DAILY) : span_days >= 2.0;
    bool want_w = force ? (o->seasons & ML_SEASON_WEEKLY) : span_days >= 14.0;
    b->kd = want_d ? kd : 0;
    b->kw = want_w ? kw : 0;
    b->trend = o->trend && c->t[n - 1] > c->t[0];
    b->t0 = c->t[0];
    b->t1 = c->t[n - 1];
    b->z = o->z > 0 ? o->z : 4.0;
    b->p = col_weekly(b) + 2 * b->kw;
    c->allowed = (b->kd ? ML_SEASON_DAILY : 0) | (b->kw ? ML_SEASON_WEEKLY : 0);
    uint32_t p = b->p;

    c->X = sm_malloc(n * p * sizeof(double));
    c->XW = sm_malloc(n * p * sizeof(double));
    c->w = sm_malloc(n * sizeof(double));
    double *A = sm_calloc((size_t)p * p, sizeof(double));
    if (!c->X || !c->XW || !c->w || !A) {
        sm_free(A);
        return SM_ERR(err, SM_ENOMEM, "baseline: no memory for a %zu x %u design", n, p);
    }
    double sumw2 = 0.0;
    c->sumw = 0.0;
    c->recent_from = 0;
    for (size_t i = 0; i < n; i++) {
        double age = (double)(c->t[n - 1] - c->t[i]);
        c->w[i] = o->halflife_ms > 0 ? exp2(-age / o->halflife_ms) : 1.0;
        c->sumw += c->w[i];
        sumw2 += c->w[i] * c->w[i];
        if (c->w[i] < 0.25) c->recent_from = i + 1;
        design_row(b, c->t[i], c->X + i, n);
        for (uint32_t k = 0; k < p; k++) c->XW[i + k * n] = c->X[i + k * n] * c->w[i];
    }
    c->neff = c->sumw * c->sumw / sumw2;
    /* keep at least a quarter of the window (and 32 rows) for the scale */
    if (c->recent_from > n - n / 4) c->recent_from = n - n / 4;
    if (n - c->recent_from < 32) c->recent_from = n > 32 ? n - 32 : 0;
    /* A = (W X)^T X */
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)p, (int)p, (int)n, 1.0, c->XW, (int)n, c->X,
                (int)n, 0.0, A, (int)p);
    double tr = 0.0;
    for (uint32_t k = 0; k < p; k++) tr += A[k + k * p];
    /* a tiny ridge on every column but the intercept (which must stay
     * unbiased: a flat series has to come out exactly flat) */
    double ridge = 1e-9 * (tr / p) + 1e-12;
    int rc = 0;
    for (uint32_t mdl = 0; mdl < NMODELS; mdl++) {
        c->np[mdl] = 0;
        if ((mdl & c->allowed) != mdl) continue;
        uint32_t q = 0;
        c->idx[mdl][q++] = 0;
        if (b->trend) c->idx[mdl][q++] = 1;
        if (mdl & ML_SEASON_DAILY)
            for (uint32_t k = 0; k < 2 * b->kd; k++) c->idx[mdl][q++] = col_daily(b) + k;
        if (mdl & ML_SEASON_WEEKLY)
            for (uint32_t k = 0; k < 2 * b->kw; k++) c->idx[mdl][q++] = col_weekly(b) + k;
        c->np[mdl] = q;
        double *L = sm_malloc((size_t)q * q * sizeof(double));
        if (!L) {
            rc = SM_ERR(err, SM_ENOMEM, "baseline: out of memory");
            break;
        }
        for (uint32_t r = 0; r < q; r++)
            for (uint32_t s = 0; s < q; s++)
                L[r + s * q] = A[c->idx[mdl][r] + c->idx[mdl][s] * p] + (r == s && r ? ridge : 0.0);
        if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)q, L, (lapack_int)q) != 0) {
            /* not positive definite even with the ridge: a heavier one */
            for (uint32_t r = 0; r < q; r++)
                for (uint32_t s = 0; s < q; s++)
                    L[r + s * q] = A[c->idx[mdl][r] + c->idx[mdl][s] * p] + (r == s && r ? 1e-6 * (tr / p) + 1e-9 : 0.0);
            if (LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)q, L, (lapack_int)q) != 0) {
                sm_free(L);
                rc = SM_ERR(err, SM_EINVAL, "baseline: singular design (timestamps too few or too close)");
                break;
            }
        }
        c->chol[mdl] = L;
    }
    sm_free(A);
    return rc;
}

/* Solve B for the series [0, mb) of the block, each with model mdl[j]. */
static void solve(fitctx *c, size_t mb, const uint8_t *mdl) {
    uint32_t p = c->b->p;
    memset(c->B, 0, (size_t)p * mb * sizeof(double));
    for (uint32_t g = 0; g < NMODELS; g++) {
        if (!c->chol[g]) continue;
        uint32_t q = c->np[g];
        size_t cnt = 0;
        for (size_t j = 0; j < mb; j++) {
            if (mdl[j] != g) continue;
            for (uint32_t r = 0; r < q; r++) c->G[r + cnt * q] = c->Z[c->idx[g][r] + j * p];
            cnt++;
        }
        if (!cnt) continue;
        LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)q, (lapack_int)cnt, c->chol[g], (lapack_int)q, c->G,
                       (lapack_int)q);
        cnt = 0;
        for (size_t j = 0; j < mb; j++) {
            if (mdl[j] != g) continue;
            for (uint32_t r = 0; r < q; r++) c->B[c->idx[g][r] + j * p] = c->G[r + cnt * q];
            cnt++;
        }
    }
}

/* Robust scale of y - f over the recent rows (ml_robust_scale), floored
 * relative to the level. */
static double robust_scale(fitctx *c, const double *y, const double *f) {
    size_t n = c->n, from = c->recent_from, rows = n - from;
    size_t stride = rows > MAD_SAMPLE ? rows / MAD_SAMPLE : 1, k = 0;
    double sum_abs = 0.0, level = 0.0;
    for (size_t i = from; i < n; i += stride) {
        if (isnan(y[i])) continue;
        double r = fabs(y[i] - f[i]);
        c->res[k++] = r;
        sum_abs += r;
        level += fabs(f[i]);
    }
    if (k == 0) return NAN;
    return ml_robust_scale(c->res, k, sum_abs, 1e-9 * (level / k + 1e-3));
}

/* Per series: the model (season mask) with the lowest BIC among those whose
 * every seasonal block explains at least min_gain of the residual variance
 * left by level and trend. */
static void select_models(fitctx *c, size_t mb, uint8_t *mdl) {
    uint32_t p = c->b->p;
    double lnn = log(c->neff > 1 ? c->neff : 2);
    for (size_t j = 0; j < mb; j++) {
        const double *ys = c->ys + j * c->n;
        double ywy = 0.0;
        for (size_t i = 0; i < c->n; i++) ywy += c->w[i] * ys[i] * ys[i];
        double rss[NMODELS];
        for (uint32_t g = 0; g < NMODELS; g++) {
            rss[g] = INFINITY;
            if (!c->chol[g]) continue;
            uint32_t q = c->np[g];
            double z[2 + 4 * MAX_HARM], bz = 0.0;
            for (uint32_t r = 0; r < q; r++) z[r] = c->Z[c->idx[g][r] + j * p];
            memcpy(c->G, z, q * sizeof(double));
            LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)q, 1, c->chol[g], (lapack_int)q, c->G, (lapack_int)q);
            for (uint32_t r = 0; r < q; r++) bz += c->G[r] * z[r];
            rss[g] = ywy - bz;
            if (rss[g] < 0) rss[g] = 0;
        }
        double base = rss[0], thr = c->o->min_gain * base, best = INFINITY;
        uint8_t pick = 0;
        for (uint32_t g = 0; g < NMODELS; g++) {
            if (!isfinite(rss[g])) continue;
            if (g != 0) {
                if (!(base > 0)) continue;
                bool ok = true;
                /* every block must pay for itself: compare with the model
                 * that lacks it */
                for (uint32_t blk = 1; blk <= 2; blk++)
                    if ((g & blk) && !(isfinite(rss[g & ~blk]) && rss[g & ~blk] - rss[g] > thr)) ok = false;
                if (!ok) continue;
            }
            double bic = c->neff * log(rss[g] / c->sumw + 1e-300) + c->np[g] * lnn;
            if (bic < best) {
                best = bic;
                pick = (uint8_t)g;
            }
        }
        mdl[j] = pick;
    }
}

static void fit_block(fitctx *c, const double *y, size_t ldy, size_t j0, size_t mb, uint8_t *mdl) {
    const ml_baseline_opts *o = c->o;
    ml_baseline_t *b = c->b;
    size_t n = c->n;
    uint32_t p = b->p;
    for (size_t j = 0; j < mb; j++) {
        const double *yj = y + (j0 + j) * ldy;
        double *ys = c->ys + j * n, sw = 0.0, swy = 0.0;
        uint64_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(yj[i])) {
                sw += c->w[i];
                swy += c->w[i] * yj[i];
                cnt++;
            }
        double mean = sw > 0 ? swy / sw : 0.0;
        for (size_t i = 0; i < n; i++) ys[i] = isnan(yj[i]) ? mean : yj[i];
        b->count[j0 + j] = cnt;
        mdl[j] = (uint8_t)c->allowed;
    }
    uint32_t rounds = o->iterations + 1;
    for (uint32_t it = 0; it < rounds; it++) {
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)p, (int)mb, (int)n, 1.0, c->XW, (int)n, c->ys,
                    (int)n, 0.0, c->Z, (int)p);
        if (it == (rounds > 1 ? 1u : 0u) && o->seasons == ML_SEASON_AUTO) select_models(c, mb, mdl);
        solve(c, mb, mdl);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)mb, (int)p, 1.0, c->X, (int)n, c->B,
                    (int)p, 0.0, c->F, (int)n);
        for (size_t j = 0; j < mb; j++) {
            const double *yj = y + (j0 + j) * ldy, *fj = c->F + j * n;
            double s = robust_scale(c, yj, fj);
            b->scale[j0 + j] = s;
            if (it + 1 == rounds) continue;
            double lim = o->huber_k * s, *ys = c->ys + j * n;
            for (size_t i = 0; i < n; i++) {
                double r = isnan(yj[i]) ? 0.0 : yj[i] - fj[i];
                if (r > lim) r = lim;
                if (r < -lim) r = -lim;
                ys[i] = fj[i] + r;
            }
        }
    }
    for (size_t j = 0; j < mb; j++) {
        memcpy(b->coef + (j0 + j) * p, c->B + j * p, p * sizeof(double));
        b->mask[j0 + j] = b->count[j0 + j] ? mdl[j] : 0;
        if (!b->count[j0 + j]) b->scale[j0 + j] = NAN;
    }
}

int ml_baseline_fit(const sm_ms_t *t, size_t n, const double *y, size_t m, size_t ldy,
                    const ml_baseline_opts *o, ml_baseline_t **out, sm_error *err) {
    ml_baseline_opts def;
    if (!o) {
        ml_baseline_opts_default(&def);
        o = &def;
    }
    if (!t || !y || n == 0 || m == 0 || ldy < n || n > INT32_MAX)
        return SM_ERR(err, SM_EINVAL, "baseline: need n >= 1 timestamps, m >= 1 series and ldy >= n");
    for (size_t i = 1; i < n; i++)
        if (t[i] < t[i - 1]) return SM_ERR(err, SM_EINVAL, "baseline: timestamps decrease at index %zu", i);
    if (!(o->huber_k > 0) || o->halflife_ms < 0 || o->weekly_harmonics >= 7)
        return SM_ERR(err, SM_EINVAL, "baseline: huber_k must be > 0, halflife >= 0, weekly harmonics < 7");
    int rc = SM_ENOMEM;
    fitctx c = {.o = o, .t = t, .n = n};
    uint8_t *mdl = NULL;
    ml_baseline_t *b = sm_calloc(1, sizeof *b);
    if (!b) goto fail;
    c.b = b;
    b->m = m;
    if ((rc = prepare(&c, err))) goto out_err;
    rc = SM_ENOMEM;
    size_t mb = m < BLOCK_SERIES ? m : BLOCK_SERIES;
    uint32_t p = b->p;
    b->coef = sm_malloc(m * p * sizeof(double));
    b->scale = sm_malloc(m * sizeof(double));
    b->mask = sm_malloc(m * sizeof(uint32_t));
    b->count = sm_malloc(m * sizeof(uint64_t));
    c.ys = sm_malloc(n * mb * sizeof(double));
    c.F = sm_malloc(n * mb * sizeof(double));
    c.Z = sm_malloc(p * mb * sizeof(double));
    c.B = sm_malloc(p * mb * sizeof(double));
    c.G = sm_malloc(p * mb * sizeof(double));
    c.res = sm_malloc((n < MAD_SAMPLE * 2 ? n : MAD_SAMPLE * 2) * sizeof(double));
    mdl = sm_malloc(mb);
    if (!b->coef || !b->scale || !b->mask || !b->count || !c.ys || !c.F || !c.Z || !c.B || !c.G || !c.res || !mdl)
        goto fail;
    for (size_t j0 = 0; j0 < m; j0 += mb) fit_block(&c, y, ldy, j0, m - j0 < mb ? m - j0 : mb, mdl);
    rc = 0;
    *out = b;
    b = NULL;
    goto done;
fail:
    SM_ERR(err, rc, "baseline: out of memory for %zu series x %zu points", m, n);
out_err:
    ml_baseline_free(b);
done:
    for (int g = 0; g < NMODELS; g++) sm_free(c.chol[g]);
    sm_free(c.X);
    sm_free(c.XW);
    sm_free(c.w);
    sm_free(c.ys);
    sm_free(c.F);
    sm_free(c.Z);
    sm_free(c.B);
    sm_free(c.G);
    sm_free(c.res);
    sm_free(mdl);
    return rc;
}

/* ---- persistence ----
 *
 * Frame (ml_int.h) with magic "SMBL", version 1, body:
 *   u8 flags (bit 0: trend), u8 kd, u8 kw, u8 reserved (0)
 *   le64 t0, le64 t1 (ms), f64 z, le32 m
 *   m x { u8 mask, le64 count, f64 scale, p x f64 coefficients }
 *   with p = 1 + trend + 2 kd + 2 kw
 */
int ml_baseline_encode(const ml_baseline_t *b, uint8_t **buf, size_t *len, sm_error *err) {
    sm_buf w = SM_BUF_INIT;
    int rc = sm_buf_reserve(&w, 64 + b->m * (17 + 8 * (size_t)b->p));
    rc = rc ? rc : ml_frame_begin(&w, BL_MAGIC, BL_VERSION);
    rc = rc ? rc : sm_buf_put_u8(&w, b->trend ? 1 : 0);
    rc = rc ? rc : sm_buf_put_u8(&w, (uint8_t)b->kd);
    rc = rc ? rc : sm_buf_put_u8(&w, (uint8_t)b->kw);
    rc = rc ? rc : sm_buf_put_u8(&w, 0);
    rc = rc ? rc : sm_buf_put_le64(&w, (uint64_t)b->t0);
    rc = rc ? rc : sm_buf_put_le64(&w, (uint64_t)b->t1);
    rc = rc ? rc : ml_put_f64(&w, b->z);
    rc = rc ? rc : sm_buf_put_le32(&w, (uint32_t)b->m);
    for (size_t j = 0; j < b->m && !rc; j++) {
        rc = sm_buf_put_u8(&w, (uint8_t)b->mask[j]);
        rc = rc ? rc : sm_buf_put_le64(&w, b->count[j]);
        rc = rc ? rc : ml_put_f64(&w, b->scale[j]);
        for (uint32_t i = 0; i < b->p && !rc; i++) rc = ml_put_f64(&w, b->coef[j * b->p + i]);
    }
    rc = rc ? rc : ml_frame_end(&w);
    if (rc) {
        sm_buf_fini(&w);
        return SM_ERR(err, rc, "baseline: out of memory while encoding");
    }
    *buf = sm_buf_detach(&w, len);
    return 0;
}

int ml_baseline_decode(const uint8_t *buf, size_t len, ml_baseline_t **out, sm_error *err) {
    sm_rd r;
    int rc = ml_frame_open(buf, len, BL_MAGIC, BL_VERSION, &r, err);
    if (rc) return rc;
    uint8_t flags, kd, kw, zero;
    uint64_t t0, t1;
    uint32_t m;
    double z;
    if (sm_rd_u8(&r, &flags) || sm_rd_u8(&r, &kd) || sm_rd_u8(&r, &kw) || sm_rd_u8(&r, &zero) ||
        sm_rd_le64(&r, &t0) || sm_rd_le64(&r, &t1) || ml_rd_f64(&r, &z) || sm_rd_le32(&r, &m))
        return SM_CORRUPT(err, "baseline state: truncated header");
    if (flags > 1 || kd > MAX_HARM || kw > 6 || zero != 0 || (int64_t)t1 < (int64_t)t0 || m == 0)
        return SM_CORRUPT(err, "baseline state: header out of range");
    uint32_t p = 1u + flags + 2u * kd + 2u * kw;
    uint64_t per = 17 + 8 * (uint64_t)p;
    if (sm_rd_left(&r) != per * m)
        return SM_CORRUPT(err, "baseline state: %zu body bytes, expected %llu", sm_rd_left(&r),
                          (unsigned long long)(per * m));
    ml_baseline_t *b = sm_calloc(1, sizeof *b);
    if (b) {
        b->coef = sm_malloc((size_t)m * p * sizeof(double));
        b->scale = sm_malloc(m * sizeof(double));
        b->mask = sm_malloc(m * sizeof(uint32_t));
        b->count = sm_malloc(m * sizeof(uint64_t));
    }
    if (!b || !b->coef || !b->scale || !b->mask || !b->count) {
        ml_baseline_free(b);
        return SM_ERR(err, SM_ENOMEM, "baseline: out of memory while decoding");
    }
    b->m = m;
    b->p = p;
    b->kd = kd;
    b->kw = kw;
    b->trend = flags & 1;
    b->t0 = (sm_ms_t)t0;
    b->t1 = (sm_ms_t)t1;
    b->z = z;
    /* lengths were checked above, so the reads below cannot fail */
    for (uint32_t j = 0; j < m; j++) {
        uint8_t mask;
        sm_rd_u8(&r, &mask);
        sm_rd_le64(&r, &b->count[j]);
        ml_rd_f64(&r, &b->scale[j]);
        for (uint32_t i = 0; i < p; i++) ml_rd_f64(&r, &b->coef[(size_t)j * p + i]);
        b->mask[j] = mask;
        if (mask > 3 || ((mask & ML_SEASON_DAILY) && !kd) || ((mask & ML_SEASON_WEEKLY) && !kw)) {
            ml_baseline_free(b);
            return SM_CORRUPT(err, "baseline state: series %u has a season without harmonics", j);
        }
    }
    *out = b;
    return 0;
}
