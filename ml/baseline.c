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
 *   Y0 (n x m) the data with NaN -> 0;  Z0 = (W X)^T Y0   one GEMM
 *   Y* (n x m) pseudo-observations, initially y with NaN -> series mean
 *   repeat:   Z = (W X)^T Y*          = Z0 - (W X)^T D, D = Y0 - Y* sparse
 *             B = A_S^-1 Z_S          dpotrs, series grouped by model S
 *             s_j = MAD(y_j - F_j)    robust scale, F = X B at <= ~4k rows
 *             F = X B, every row      GEMM per chunk of rows (not in the
 *                                     last round)
 *             Y* = F + clip(y - F, +-k s);  NaN -> F
 *
 * Iterating least squares on winsorised pseudo-observations converges to
 * the Huber M-estimate (Huber 1981, section 7.8) with a design matrix that
 * never changes, which is what lets one GEMM serve every series; per-series
 * IRLS weights would need one p x p system per series.  After the first
 * round each series picks its seasonal blocks (select_models).
 *
 * Y* differs from Y0 only where a residual is clipped or a value missing,
 * so a round's Z is Z0 corrected by those few points (corr), not another
 * GEMM over the data: the data are multiplied once (Z0), then read once per
 * robust round by the clip pass, whose F = X B is computed a chunk of rows
 * at a time so that it stays in cache.  The last round needs F only at the
 * rows the scale samples.
 *
 * Series are processed in column blocks of BLOCK_SERIES; blocks are
 * independent, taken by up to FIT_THREADS workers (OpenBLAS then runs
 * single-threaded), and each is computed the same way whichever worker
 * takes it, so the bits do not depend on the threads.  Scratch memory is
 * bounded per worker whatever m is (plus the corrections of one block).
 */
#include "ml/baseline.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ml/ml_int.h"
#include "tsdb/base/sm_alloc.h"

#define BLOCK_SERIES 64 /* series per block */
#define RES_ROWS 4096   /* rows x series per GEMM of the residual pass (its F stays in L2) */
#define RES_SERIES 16
#define FIT_THREADS 8
#define FIT_PAR_MIN 1e6 /* points (n * m) from which a fit runs on several threads */
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
    size_t n, m, ldy;
    const double *y;
    double *X, *XW, *w;        /* n x p design, weighted design (column-major), weights */
    double *XWr;               /* the weighted design row-major: row i at XWr + i*p */
    double *Xs;                /* ns x p: the design at the rows the scale samples */
    size_t *srow, ns;          /* those rows (recent part, every stride-th) */
    double sumw, neff;         /* sum of weights, Kish effective size */
    uint32_t allowed;          /* season blocks the design can carry */
    uint32_t idx[NMODELS][2 + 4 * MAX_HARM], np[NMODELS]; /* columns of each model */
    double *chol[NMODELS];     /* Cholesky factors of A restricted to a model */
    size_t recent_from;        /* first row of the recent part (scale) */
    _Atomic size_t next_block; /* the next block of series a worker takes */
} fitctx;

/* A pseudo-observation that differs from the data: y*[row, col] = y0 - d,
 * with y0 the value (0 where it is missing). */
typedef struct corr {
    uint32_t row, col;
    double d;
} corr;

/* One worker's scratch for a block of up to BLOCK_SERIES series. */
typedef struct worker {
    fitctx *c;
    double *y0;        /* n x BLOCK_SERIES: a block that has NaN, with NaN -> 0 (lazily allocated) */
    double *F;         /* RES_ROWS x RES_SERIES: the fit over a chunk of rows */
    double *Fs;        /* ns x BLOCK_SERIES: the fit at the scale's rows */
    double *Ys;        /* ns x BLOCK_SERIES: the values at those rows */
    double *Z0, *Z, *B, *G, *nanz; /* p x BLOCK_SERIES */
    double *res;       /* ns */
    corr *d;
    size_t nd, dcap;
    double ywy0[BLOCK_SERIES], dywy[BLOCK_SERIES], mean[BLOCK_SERIES], nanw[BLOCK_SERIES];
    uint8_t mdl[BLOCK_SERIES];
    bool has_nan[BLOCK_SERIES];
    bool failed;
} worker;

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
    c->XWr = sm_malloc(n * p * sizeof(double));
    c->w = sm_malloc(n * sizeof(double));
    double *A = sm_calloc((size_t)p * p, sizeof(double));
    if (!c->X || !c->XW || !c->XWr || !c->w || !A) {
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
        for (uint32_t k = 0; k < p; k++) {
            c->XW[i + k * n] = c->X[i + k * n] * c->w[i];
            c->XWr[i * p + k] = c->XW[i + k * n];
        }
    }
    c->neff = c->sumw * c->sumw / sumw2;
    /* keep at least a quarter of the window (and 32 rows) for the scale */
    if (c->recent_from > n - n / 4) c->recent_from = n - n / 4;
    if (n - c->recent_from < 32) c->recent_from = n > 32 ? n - 32 : 0;
    /* the rows the scale is estimated from: every stride-th of the recent
     * part, at most about 2 * MAD_SAMPLE of them */
    size_t rows = n - c->recent_from, stride = rows > MAD_SAMPLE ? rows / MAD_SAMPLE : 1;
    c->ns = (rows + stride - 1) / stride;
    c->srow = sm_malloc(c->ns * sizeof(size_t));
    c->Xs = sm_malloc(c->ns * p * sizeof(double));
    if (!c->srow || !c->Xs) {
        sm_free(A);
        return SM_ERR(err, SM_ENOMEM, "baseline: no memory for the scale's rows");
    }
    for (size_t k = 0; k < c->ns; k++) {
        c->srow[k] = c->recent_from + k * stride;
        for (uint32_t q = 0; q < p; q++) c->Xs[k + q * c->ns] = c->X[c->srow[k] + q * n];
    }
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
static void solve(const fitctx *c, worker *wk, size_t mb) {
    uint32_t p = c->b->p;
    memset(wk->B, 0, (size_t)p * mb * sizeof(double));
    for (uint32_t g = 0; g < NMODELS; g++) {
        if (!c->chol[g]) continue;
        uint32_t q = c->np[g];
        size_t cnt = 0;
        for (size_t j = 0; j < mb; j++) {
            if (wk->mdl[j] != g) continue;
            for (uint32_t r = 0; r < q; r++) wk->G[r + cnt * q] = wk->Z[c->idx[g][r] + j * p];
            cnt++;
        }
        if (!cnt) continue;
        LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)q, (lapack_int)cnt, c->chol[g], (lapack_int)q, wk->G,
                       (lapack_int)q);
        cnt = 0;
        for (size_t j = 0; j < mb; j++) {
            if (wk->mdl[j] != g) continue;
            for (uint32_t r = 0; r < q; r++) wk->B[c->idx[g][r] + j * p] = wk->G[r + cnt * q];
            cnt++;
        }
    }
}

/* Per series: the model (season mask) with the lowest BIC among those whose
 * every seasonal block explains at least min_gain of the residual variance
 * left by level and trend.  ywy[j] = y*^T W y* of series j. */
static void select_models(const fitctx *c, worker *wk, size_t mb, const double *ywy) {
    uint32_t p = c->b->p;
    double lnn = log(c->neff > 1 ? c->neff : 2);
    for (size_t j = 0; j < mb; j++) {
        double rss[NMODELS];
        for (uint32_t g = 0; g < NMODELS; g++) {
            rss[g] = INFINITY;
            if (!c->chol[g]) continue;
            uint32_t q = c->np[g];
            double z[2 + 4 * MAX_HARM], bz = 0.0;
            for (uint32_t r = 0; r < q; r++) z[r] = wk->Z[c->idx[g][r] + j * p];
            memcpy(wk->G, z, q * sizeof(double));
            LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', (lapack_int)q, 1, c->chol[g], (lapack_int)q, wk->G, (lapack_int)q);
            for (uint32_t r = 0; r < q; r++) bz += wk->G[r] * z[r];
            rss[g] = ywy[j] - bz;
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
        wk->mdl[j] = pick;
    }
}

/* Robust scale of every series of the block from the current B, over the
 * sampled recent rows only (ml_robust_scale), floored relative to the
 * level: one small GEMM for the fit at those rows. */
static void block_scales(const fitctx *c, worker *wk, size_t j0, size_t mb) {
    size_t ns = c->ns;
    uint32_t p = c->b->p;
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)ns, (int)mb, (int)p, 1.0, c->Xs, (int)ns, wk->B,
                (int)p, 0.0, wk->Fs, (int)ns);
    for (size_t j = 0; j < mb; j++) {
        const double *yj = wk->Ys + j * ns, *fj = wk->Fs + j * ns;
        size_t k = 0;
        double sum_abs = 0.0, level = 0.0;
        for (size_t s = 0; s < ns; s++) {
            double v = yj[s];
            if (isnan(v)) continue;
            double r = fabs(v - fj[s]);
            wk->res[k++] = r;
            sum_abs += r;
            level += fabs(fj[s]);
        }
        c->b->scale[j0 + j] = k ? ml_robust_scale(wk->res, k, sum_abs, 1e-9 * (level / k + 1e-3)) : NAN;
    }
}

static bool push_corr(worker *wk, size_t row, size_t col, double d) {
    if (wk->nd == wk->dcap) {
        size_t cap = wk->dcap ? 2 * wk->dcap : 4096;
        corr *nd = sm_realloc(wk->d, cap * sizeof *nd);
        if (!nd) return false;
        wk->d = nd;
        wk->dcap = cap;
    }
    wk->d[wk->nd++] = (corr){(uint32_t)row, (uint32_t)col, d};
    return true;
}

/* One point outside the limit or missing: its correction y0 - y*. */
static bool residual_corr(worker *wk, double v, double f, double w, size_t row, size_t col, double lim, double *dywy) {
    double y0, ys;
    if (isnan(v)) {
        y0 = 0.0;
        ys = f;
    } else if (isnan(lim)) {
        return true;
    } else {
        y0 = v;
        ys = f + (v - f > 0 ? lim : -lim);
    }
    if (y0 == ys) return true;
    *dywy += w * (ys * ys - y0 * y0);
    return push_corr(wk, row, col, y0 - ys);
}

typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

/* Corrections of one series over rows [r0, r0 + nr) (y, f, w at those
 * rows): every point whose residual exceeds lim, or whose value is
 * missing.  *ywy (when not NULL) gets the sum of w y^2 over these rows, for
 * a series that has no missing value; *dywy the change y*^T W y* - y0^T W
 * y0.  Nearly every residual is within the limit, so a vector pass only
 * notes whether any is not, and a scalar pass finds them when one is.
 * Built for AVX2 too (no FMA: both versions give the same bits). */
__attribute__((target_clones("avx2", "default"))) static bool
series_residuals(worker *wk, const double *y, const double *f, const double *w, size_t nr, size_t r0, size_t col,
                 double lim, double *ywy, double *dywy) {
    v4d acc = {0, 0, 0, 0}, hi = {lim, lim, lim, lim}, lo = -hi;
    v4l bad = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= nr; i += 4) {
        v4d v, fv, wv;
        memcpy(&v, y + i, sizeof v);
        memcpy(&fv, f + i, sizeof fv);
        memcpy(&wv, w + i, sizeof wv);
        acc += wv * v * v;
        v4d r = v - fv;
        bad |= ~((r <= hi) & (r >= lo)); /* NaN compares false */
    }
    double tail = 0.0;
    bool any = (bad[0] | bad[1] | bad[2] | bad[3]) != 0;
    for (; i < nr; i++) {
        tail += w[i] * y[i] * y[i];
        double r = y[i] - f[i];
        any |= !(r <= lim && r >= -lim);
    }
    if (ywy) *ywy += (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail;
    if (!any) return true;
    for (i = 0; i < nr; i++) {
        double r = y[i] - f[i];
        if (r <= lim && r >= -lim) continue;
        if (!residual_corr(wk, y[i], f[i], w[i], r0 + i, col, lim, dywy)) return false;
    }
    return true;
}

/* The pseudo-observations of the next round, as corrections to the data:
 * F = X B one chunk of rows at a time (a GEMM whose output stays in
 * cache), then the corrections (series_residuals).  In round 0 the pass
 * also sums y^T W y of the series without missing values. */
static bool block_residuals(const fitctx *c, worker *wk, size_t j0, size_t mb, bool first) {
    size_t n = c->n;
    uint32_t p = c->b->p;
    wk->nd = 0;
    for (size_t j = 0; j < mb; j++) {
        wk->dywy[j] = 0.0;
        if (first && !wk->has_nan[j]) wk->ywy0[j] = 0.0;
    }
    for (size_t r0 = 0; r0 < n; r0 += RES_ROWS) {
        size_t nr = n - r0 < RES_ROWS ? n - r0 : RES_ROWS;
        for (size_t s0 = 0; s0 < mb; s0 += RES_SERIES) {
            size_t ms = mb - s0 < RES_SERIES ? mb - s0 : RES_SERIES;
            cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)ms, (int)p, 1.0, c->X + r0, (int)n,
                        wk->B + s0 * p, (int)p, 0.0, wk->F, (int)nr);
            for (size_t j = s0; j < s0 + ms; j++) {
                double lim = c->o->huber_k * c->b->scale[j0 + j];
                double *ywy = first && !wk->has_nan[j] ? &wk->ywy0[j] : NULL;
                if (!series_residuals(wk, c->y + (j0 + j) * c->ldy + r0, wk->F + (j - s0) * nr, c->w + r0, nr, r0, j,
                                      lim, ywy, &wk->dywy[j]))
                    return false;
            }
        }
    }
    return true;
}

/* Scan series j of the block, which has missing values: count, weighted
 * mean and y^T W y of the observed values, the sum of the weighted design
 * rows where values are missing, and a copy with missing values as 0 into
 * dst. */
static void scan_series(const fitctx *c, worker *wk, size_t j0, size_t j, double *dst) {
    size_t n = c->n;
    uint32_t p = c->b->p;
    const double *yj = c->y + (j0 + j) * c->ldy, *w = c->w;
    double sw = 0.0, swy = 0.0, swyy = 0.0, *nz = wk->nanz + j * p;
    uint64_t cnt = 0;
    memset(nz, 0, p * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double v = yj[i];
        if (isnan(v)) {
            dst[i] = 0.0;
            const double *xr = c->XWr + i * p;
            for (uint32_t k = 0; k < p; k++) nz[k] += xr[k];
            continue;
        }
        dst[i] = v;
        double wv = w[i] * v;
        sw += w[i];
        swy += wv;
        swyy += wv * v;
        cnt++;
    }
    wk->mean[j] = sw > 0 ? swy / sw : 0.0;
    wk->ywy0[j] = swyy;
    wk->nanw[j] = c->sumw - sw;
    c->b->count[j0 + j] = cnt;
}

/* Load a block: Z0 = (W X)^T Y0 with missing values as 0.  One GEMM
 * straight on the caller's array; a series whose column of Z0 is not
 * finite has missing (or infinite) values, and only those are scanned and
 * multiplied again from a cleaned copy. */
static bool block_load(const fitctx *c, worker *wk, size_t j0, size_t mb, bool need_ywy) {
    size_t n = c->n, ldy = c->ldy;
    uint32_t p = c->b->p;
    bool direct = ldy <= INT32_MAX;
    if (direct)
        cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)p, (int)mb, (int)n, 1.0, c->XW, (int)n,
                    c->y + j0 * ldy, (int)ldy, 0.0, wk->Z0, (int)p);
    size_t nbad = 0;
    uint32_t bad[BLOCK_SERIES];
    for (size_t j = 0; j < mb; j++) {
        /* the values the scale is estimated from, gathered once */
        const double *yj = c->y + (j0 + j) * ldy;
        for (size_t k = 0; k < c->ns; k++) wk->Ys[k + j * c->ns] = yj[c->srow[k]];
        bool fin = direct;
        for (uint32_t k = 0; k < p && fin; k++) fin = isfinite(wk->Z0[k + j * p]);
        wk->has_nan[j] = !fin;
        wk->mdl[j] = (uint8_t)c->allowed;
        wk->nanw[j] = 0.0;
        wk->mean[j] = 0.0;
        memset(wk->nanz + j * p, 0, p * sizeof(double));
        if (!fin) {
            bad[nbad++] = (uint32_t)j;
            continue;
        }
        c->b->count[j0 + j] = n;
        wk->ywy0[j] = NAN; /* summed by the first residual pass */
        if (need_ywy) {
            double s = 0.0;
            for (size_t i = 0; i < n; i++) s += c->w[i] * yj[i] * yj[i];
            wk->ywy0[j] = s;
        }
    }
    if (!nbad) return true;
    if (!wk->y0 && !(wk->y0 = sm_malloc(n * (c->m < BLOCK_SERIES ? c->m : BLOCK_SERIES) * sizeof(double))))
        return false;
    for (size_t k = 0; k < nbad; k++) scan_series(c, wk, j0, bad[k], wk->y0 + k * n);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, (int)p, (int)nbad, (int)n, 1.0, c->XW, (int)n, wk->y0,
                (int)n, 0.0, wk->G, (int)p);
    for (size_t k = 0; k < nbad; k++) memcpy(wk->Z0 + bad[k] * p, wk->G + k * p, p * sizeof(double));
    return true;
}

/* Z -= (W X)^T D over the block's corrections, four columns at a time
 * (the same operations per element as a scalar loop: same bits). */
__attribute__((target_clones("avx2", "default"))) static void apply_corrections(const fitctx *c, worker *wk) {
    uint32_t p = c->b->p;
    for (size_t e = 0; e < wk->nd; e++) {
        const corr *d = &wk->d[e];
        const double *xr = c->XWr + (size_t)d->row * p;
        double *z = wk->Z + (size_t)d->col * p, dv = d->d;
        v4d dv4 = {dv, dv, dv, dv};
        uint32_t k = 0;
        for (; k + 4 <= p; k += 4) {
            v4d a, x;
            memcpy(&a, z + k, sizeof a);
            memcpy(&x, xr + k, sizeof x);
            a -= dv4 * x;
            memcpy(z + k, &a, sizeof a);
        }
        for (; k < p; k++) z[k] -= dv * xr[k];
    }
}

/* Fit the series [j0, j0 + mb).  Round 0 is least squares with missing
 * values at the series' mean; each later round is least squares on the
 * pseudo-observations y* = F + clip(y - F, +-k s) of the round before,
 * whose Z = (W X)^T y* is Z0 minus the few corrections (clipped and
 * missing points) times their rows of W X: the data are read once per
 * round, by the residual pass, and the last round needs the fit only at
 * the scale's rows. */
static bool fit_block(fitctx *c, worker *wk, size_t j0, size_t mb) {
    const ml_baseline_opts *o = c->o;
    ml_baseline_t *b = c->b;
    uint32_t p = b->p;
    uint32_t rounds = o->iterations + 1, select_round = rounds > 1 ? 1 : 0;
    if (!block_load(c, wk, j0, mb, select_round == 0 && o->seasons == ML_SEASON_AUTO)) return false;
    for (uint32_t it = 0; it < rounds; it++) {
        double ywy[BLOCK_SERIES];
        memcpy(wk->Z, wk->Z0, (size_t)p * mb * sizeof(double));
        if (it == 0) {
            for (size_t j = 0; j < mb; j++) {
                double mu = wk->mean[j], *z = wk->Z + j * p;
                const double *nz = wk->nanz + j * p;
                if (wk->nanw[j] != 0.0)
                    for (uint32_t k = 0; k < p; k++) z[k] += mu * nz[k];
                ywy[j] = wk->ywy0[j] + wk->nanw[j] * mu * mu;
            }
        } else {
            apply_corrections(c, wk);
            for (size_t j = 0; j < mb; j++) ywy[j] = wk->ywy0[j] + wk->dywy[j];
        }
        if (it == select_round && o->seasons == ML_SEASON_AUTO) select_models(c, wk, mb, ywy);
        solve(c, wk, mb);
        block_scales(c, wk, j0, mb);
        if (it + 1 < rounds && !block_residuals(c, wk, j0, mb, it == 0)) return false;
    }
    for (size_t j = 0; j < mb; j++) {
        memcpy(b->coef + (j0 + j) * p, wk->B + j * p, p * sizeof(double));
        b->mask[j0 + j] = b->count[j0 + j] ? wk->mdl[j] : 0;
        if (!b->count[j0 + j]) b->scale[j0 + j] = NAN;
    }
    return true;
}

static void *worker_main(void *arg) {
    worker *wk = arg;
    fitctx *c = wk->c;
    size_t nblocks = (c->m + BLOCK_SERIES - 1) / BLOCK_SERIES;
    for (;;) {
        size_t k = atomic_fetch_add(&c->next_block, 1);
        if (k >= nblocks) break;
        size_t j0 = k * BLOCK_SERIES, mb = c->m - j0 < BLOCK_SERIES ? c->m - j0 : BLOCK_SERIES;
        if (!fit_block(c, wk, j0, mb)) {
            wk->failed = true;
            break;
        }
    }
    return NULL;
}

static bool worker_init(worker *wk, fitctx *c) {
    memset(wk, 0, sizeof *wk);
    wk->c = c;
    /* sized for the problem, not the largest block: the streaming scorer
     * refits one short series at a time */
    size_t mb = c->m < BLOCK_SERIES ? c->m : BLOCK_SERIES, ms = mb < RES_SERIES ? mb : RES_SERIES;
    size_t rows = c->n < RES_ROWS ? c->n : RES_ROWS, pb = (size_t)c->b->p * mb;
    wk->F = sm_malloc(rows * ms * sizeof(double));
    wk->Fs = sm_malloc(c->ns * mb * sizeof(double));
    wk->Ys = sm_malloc(c->ns * mb * sizeof(double));
    wk->Z0 = sm_malloc(pb * sizeof(double));
    wk->Z = sm_malloc(pb * sizeof(double));
    wk->B = sm_malloc(pb * sizeof(double));
    wk->G = sm_malloc(pb * sizeof(double));
    wk->nanz = sm_malloc(pb * sizeof(double));
    wk->res = sm_malloc(c->ns * sizeof(double));
    return wk->F && wk->Fs && wk->Ys && wk->Z0 && wk->Z && wk->B && wk->G && wk->nanz && wk->res;
}

static void worker_fini(worker *wk) {
    sm_free(wk->y0);
    sm_free(wk->F);
    sm_free(wk->Fs);
    sm_free(wk->Ys);
    sm_free(wk->Z0);
    sm_free(wk->Z);
    sm_free(wk->B);
    sm_free(wk->G);
    sm_free(wk->nanz);
    sm_free(wk->res);
    sm_free(wk->d);
}

/* While any fit runs its own threads, OpenBLAS runs single-threaded (each
 * worker calls it on its own blocks; OpenBLAS's pool would only spin
 * against them).  The count lets fits overlap; the last one out restores
 * the caller's setting. */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved;

static void blas_single_begin(void) {
    pthread_mutex_lock(&blas_mu);
    if (blas_users++ == 0) {
        blas_saved = openblas_get_num_threads();
        if (blas_saved > 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mu);
}

static void blas_single_end(void) {
    pthread_mutex_lock(&blas_mu);
    if (--blas_users == 0 && blas_saved > 1) openblas_set_num_threads(blas_saved);
    pthread_mutex_unlock(&blas_mu);
}

int ml_baseline_fit(const sm_ms_t *t, size_t n, const double *y, size_t m, size_t ldy,
                    const ml_baseline_opts *o, ml_baseline_t **out, sm_error *err) {
    ml_baseline_opts def;
    if (!o) {
        ml_baseline_opts_default(&def);
        o = &def;
    }
    if (!t || !y || n == 0 || m == 0 || ldy < n || n > INT32_MAX || m > UINT32_MAX)
        return SM_ERR(err, SM_EINVAL, "baseline: need n >= 1 timestamps, m >= 1 series and ldy >= n");
    for (size_t i = 1; i < n; i++)
        if (t[i] < t[i - 1]) return SM_ERR(err, SM_EINVAL, "baseline: timestamps decrease at index %zu", i);
    if (!(o->huber_k > 0) || o->halflife_ms < 0 || o->weekly_harmonics >= 7)
        return SM_ERR(err, SM_EINVAL, "baseline: huber_k must be > 0, halflife >= 0, weekly harmonics < 7");
    if (o->iterations > ML_BASELINE_MAX_ITERATIONS)
        return SM_ERR(err, SM_EINVAL, "baseline: iterations must be at most %d", ML_BASELINE_MAX_ITERATIONS);
    int rc = SM_ENOMEM;
    fitctx c = {.o = o, .t = t, .n = n, .m = m, .ldy = ldy, .y = y};
    atomic_init(&c.next_block, 0);
    worker wk[FIT_THREADS];
    size_t nw = 0;
    ml_baseline_t *b = sm_calloc(1, sizeof *b);
    if (!b) goto fail;
    c.b = b;
    b->m = m;
    if ((rc = prepare(&c, err))) goto out_err;
    rc = SM_ENOMEM;
    uint32_t p = b->p;
    b->coef = sm_malloc(m * p * sizeof(double));
    b->scale = sm_malloc(m * sizeof(double));
    b->mask = sm_malloc(m * sizeof(uint32_t));
    b->count = sm_malloc(m * sizeof(uint64_t));
    if (!b->coef || !b->scale || !b->mask || !b->count) goto fail;
    /* Blocks are independent and each is computed the same way whichever
     * worker takes it, so the result does not depend on the threads. */
    size_t nblocks = (m + BLOCK_SERIES - 1) / BLOCK_SERIES, nt = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if ((double)n * (double)m >= FIT_PAR_MIN && cpus > 1)
        nt = (size_t)(cpus < FIT_THREADS ? cpus : FIT_THREADS);
    if (nt > nblocks) nt = nblocks;
    for (; nw < nt; nw++) {
        if (!worker_init(&wk[nw], &c)) {
            worker_fini(&wk[nw]);
            if (nw == 0) goto fail;
            break; /* fewer threads */
        }
    }
    pthread_t th[FIT_THREADS];
    size_t started = 0;
    if (nw > 1) blas_single_begin();
    for (size_t k = 1; k < nw; k++) {
        if (pthread_create(&th[k], NULL, worker_main, &wk[k]) != 0) break;
        started = k;
    }
    worker_main(&wk[0]); /* and whatever a thread that failed to start would have taken */
    for (size_t k = 1; k <= started; k++) pthread_join(th[k], NULL);
    if (nw > 1) blas_single_end();
    bool failed = false;
    for (size_t k = 0; k < nw; k++) failed |= wk[k].failed;
    if (failed) goto fail;
    rc = 0;
    *out = b;
    b = NULL;
    goto done;
fail:
    SM_ERR(err, rc, "baseline: out of memory for %zu series x %zu points", m, n);
out_err:
    ml_baseline_free(b);
done:
    for (size_t k = 0; k < nw; k++) worker_fini(&wk[k]);
    for (int g = 0; g < NMODELS; g++) sm_free(c.chol[g]);
    sm_free(c.X);
    sm_free(c.XW);
    sm_free(c.XWr);
    sm_free(c.Xs);
    sm_free(c.srow);
    sm_free(c.w);
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
